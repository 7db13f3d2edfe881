//! A fixed vector of the scalars that shares, quotas and filters are computed on, so the hot
//! path adds and compares four integers instead of walking a `Resources` bag.

use corral_state::{Quantities, Resources, Value};

/// The resources shares and quotas are measured in, in the order of `Amounts`' slots.
pub const DIMENSIONS: [&str; 4] = ["cpus", "mem", "disk", "gpus"];

pub(crate) fn dimension_of(name: &str) -> Option<usize> {
    DIMENSIONS.iter().position(|dimension| *dimension == name)
}

/// Thousandths of cpus, mem, disk and gpus, summed over every reservation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct Amounts(pub(crate) [i64; 4]);

/// The value a dimension takes when a quota sets no limit on it.
pub(crate) const UNLIMITED: i64 = i64::MAX;

impl Amounts {
    pub(crate) const ZERO: Amounts = Amounts([0; 4]);
    pub(crate) const UNLIMITED: Amounts = Amounts([UNLIMITED; 4]);

    pub(crate) fn of_resources(resources: &Resources) -> Amounts {
        let mut amounts = Amounts::ZERO;
        for resource in resources.iter() {
            let Value::Scalar(amount) = resource.value else { continue };
            if let Some(dimension) = dimension_of(&resource.name) {
                amounts.0[dimension] += amount.milli();
            }
        }
        amounts
    }

    pub(crate) fn of_quantities(quantities: &Quantities) -> Amounts {
        let mut amounts = Amounts::ZERO;
        for (name, amount) in quantities.iter() {
            if let Some(dimension) = dimension_of(name) {
                amounts.0[dimension] += amount.milli();
            }
        }
        amounts
    }

    /// Limits name only what they cap; every other dimension is unlimited.
    pub(crate) fn of_limits(limits: &Quantities) -> Amounts {
        let mut amounts = Amounts::UNLIMITED;
        for (name, amount) in limits.iter() {
            if let Some(dimension) = dimension_of(name) {
                amounts.0[dimension] = amount.milli();
            }
        }
        amounts
    }

    pub(crate) fn to_quantities(self) -> Quantities {
        let mut quantities = Quantities::default();
        for (dimension, name) in DIMENSIONS.iter().enumerate() {
            let amount = self.0[dimension];
            if amount != 0 && amount != UNLIMITED {
                quantities.add_one(name, corral_state::Scalar::from_milli(amount));
            }
        }
        quantities
    }

    pub(crate) fn plus(self, other: Amounts) -> Amounts {
        let mut sum = self;
        for dimension in 0..4 {
            sum.0[dimension] = sum.0[dimension].saturating_add(other.0[dimension]);
        }
        sum
    }

    pub(crate) fn minus(self, other: Amounts) -> Amounts {
        let mut difference = self;
        for dimension in 0..4 {
            difference.0[dimension] = difference.0[dimension].saturating_sub(other.0[dimension]);
        }
        difference
    }

    /// `self - other`, never below zero in any dimension.
    pub(crate) fn minus_floored(self, other: Amounts) -> Amounts {
        let mut difference = self.minus(other);
        for amount in &mut difference.0 {
            *amount = (*amount).max(0);
        }
        difference
    }

    pub(crate) fn min(self, other: Amounts) -> Amounts {
        let mut least = self;
        for dimension in 0..4 {
            least.0[dimension] = least.0[dimension].min(other.0[dimension]);
        }
        least
    }

    pub(crate) fn max(self, other: Amounts) -> Amounts {
        let mut most = self;
        for dimension in 0..4 {
            most.0[dimension] = most.0[dimension].max(other.0[dimension]);
        }
        most
    }

    pub(crate) fn fits_within(self, other: Amounts) -> bool {
        (0..4).all(|dimension| self.0[dimension] <= other.0[dimension])
    }

    pub(crate) fn is_zero(self) -> bool {
        self.0.iter().all(|amount| *amount == 0)
    }

    pub(crate) fn is_positive_anywhere(self) -> bool {
        self.0.iter().any(|amount| *amount > 0)
    }
}

/// The dominant share of `allocation` against `total`, divided by `weight_milli` thousandths,
/// as an integer so that replicas and reruns order frameworks exactly alike.
pub(crate) fn weighted_share(allocation: Amounts, total: Amounts, weight_milli: i64) -> u64 {
    let mut dominant: u128 = 0;
    for dimension in 0..4 {
        let total = total.0[dimension];
        let used = allocation.0[dimension];
        if total <= 0 || used <= 0 {
            continue;
        }
        let share = ((used as u128) << 40) / total as u128;
        dominant = dominant.max(share);
    }
    let weight = weight_milli.max(1) as u128;
    let weighted = dominant * 1000 / weight;
    weighted.min(u128::from(u64::MAX)) as u64
}

/// A share as the fraction it stands for, for explanations.
pub(crate) fn share_as_fraction(share: u64) -> f64 {
    share as f64 / (1u64 << 40) as f64
}
