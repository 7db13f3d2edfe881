use serde::{Deserialize, Serialize};

use crate::{Quantities, Role, Scalar};

/// Mesos `QuotaConfig`: guarantees are satisfied first, limits are never exceeded. A name
/// missing from `limits` is unlimited.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaConfig {
    pub role: Role,
    pub guarantees: Quantities,
    pub limits: Quantities,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleConfig {
    /// Fixed-point weight; 1 unless an operator set it.
    pub weight: Scalar,
    pub guarantees: Quantities,
    pub limits: Quantities,
}

impl Default for RoleConfig {
    fn default() -> RoleConfig {
        RoleConfig {
            weight: Scalar::from_units(1),
            guarantees: Quantities::default(),
            limits: Quantities::default(),
        }
    }
}
