//! What an operator may tune, with Mesos's defaults.

use corral_state::{Quantities, Scalar};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllocatorConfig {
    /// An offer must hold at least all of one of these quantities (Mesos
    /// `--min_allocatable_resources`); smaller leftovers stay unoffered.
    pub min_allocatable: Vec<Quantities>,
    /// How many offers one framework may get in one cycle; `None` leaves it unbounded.
    pub max_offers_per_framework: Option<u32>,
}

impl Default for AllocatorConfig {
    fn default() -> AllocatorConfig {
        AllocatorConfig {
            min_allocatable: vec![
                Quantities::from_pairs(&[("cpus", Scalar::from_milli(10))]),
                Quantities::from_pairs(&[("mem", Scalar::from_units(32))]),
            ],
            max_offers_per_framework: None,
        }
    }
}
