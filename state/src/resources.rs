//! Resources with Mesos semantics: named scalars, ranges and sets, each with a reservation.
//!
//! Scalars are fixed-point with three decimal digits, as Mesos does since 1.1, so that
//! `0.1 + 0.2 == 0.3` and a replica on any machine computes the same sums.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use smol_str::SmolStr;

use crate::ids::Role;

/// A non-negative quantity in thousandths: `Scalar(1500)` is 1.5.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Scalar(i64);

impl Scalar {
    pub const ZERO: Scalar = Scalar(0);
    /// Thousandths per unit.
    pub const SCALE: i64 = 1000;

    pub const fn from_milli(milli: i64) -> Scalar {
        Scalar(milli)
    }

    pub const fn from_units(units: i64) -> Scalar {
        Scalar(units * Self::SCALE)
    }

    pub const fn milli(self) -> i64 {
        self.0
    }

    /// Rounds to the nearest thousandth, as Mesos does for JSON doubles.
    pub fn from_f64(value: f64) -> Option<Scalar> {
        if !value.is_finite() {
            return None;
        }
        let milli = (value * Self::SCALE as f64).round();
        if milli.abs() > (i64::MAX / 2) as f64 {
            return None;
        }
        Some(Scalar(milli as i64))
    }

    pub fn as_f64(self) -> f64 {
        self.0 as f64 / Self::SCALE as f64
    }

    pub fn is_zero(self) -> bool {
        self.0 == 0
    }

    pub fn saturating_sub(self, other: Scalar) -> Scalar {
        Scalar(self.0.saturating_sub(other.0).max(0))
    }

    pub fn checked_add(self, other: Scalar) -> Option<Scalar> {
        self.0.checked_add(other.0).map(Scalar)
    }
}

impl std::ops::Add for Scalar {
    type Output = Scalar;
    fn add(self, other: Scalar) -> Scalar {
        Scalar(self.0.saturating_add(other.0))
    }
}

impl std::ops::AddAssign for Scalar {
    fn add_assign(&mut self, other: Scalar) {
        *self = *self + other;
    }
}

impl std::ops::Sub for Scalar {
    type Output = Scalar;
    fn sub(self, other: Scalar) -> Scalar {
        Scalar(self.0.saturating_sub(other.0))
    }
}

impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let whole = abs / Self::SCALE as u64;
        let frac = abs % Self::SCALE as u64;
        if frac == 0 {
            return write!(f, "{sign}{whole}");
        }
        let digits = format!("{frac:03}");
        write!(f, "{sign}{whole}.{}", digits.trim_end_matches('0'))
    }
}

impl FromStr for Scalar {
    type Err = String;

    /// Parses a decimal exactly (no float on the way); digits past the third decimal round
    /// half away from zero.
    fn from_str(text: &str) -> Result<Scalar, String> {
        let text = text.trim();
        let (negative, body) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text.strip_prefix('+').unwrap_or(text)),
        };
        let (whole, frac) = match body.split_once('.') {
            Some((whole, frac)) => (whole, frac),
            None => (body, ""),
        };
        if whole.is_empty() && frac.is_empty() {
            return Err(format!("'{text}' is not a number"));
        }
        if !whole.chars().all(|c| c.is_ascii_digit()) || !frac.chars().all(|c| c.is_ascii_digit()) {
            return Err(format!("'{text}' is not a decimal number"));
        }
        let whole_value: i64 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| format!("'{text}' is too large"))?
        };
        let mut milli: i64 = 0;
        for (position, digit) in frac.chars().take(3).enumerate() {
            let digit = i64::from(digit as u8 - b'0');
            milli += digit * 10_i64.pow(2 - position as u32);
        }
        if let Some(fourth) = frac.chars().nth(3) {
            if fourth >= '5' {
                milli += 1;
            }
        }
        let total = whole_value
            .checked_mul(Self::SCALE)
            .and_then(|w| w.checked_add(milli))
            .ok_or_else(|| format!("'{text}' is too large"))?;
        Ok(Scalar(if negative { -total } else { total }))
    }
}

/// Inclusive, sorted, non-overlapping, non-adjacent ranges of integers (Mesos `Value.Ranges`).
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Ranges(Vec<(u64, u64)>);

impl Ranges {
    pub fn new(mut ranges: Vec<(u64, u64)>) -> Result<Ranges, String> {
        for &(begin, end) in &ranges {
            if begin > end {
                return Err(format!("range {begin}-{end} ends before it begins"));
            }
        }
        ranges.sort_unstable();
        Ok(Ranges(Self::coalesce(ranges)))
    }

    pub fn single(begin: u64, end: u64) -> Ranges {
        Ranges::new(vec![(begin.min(end), begin.max(end))]).unwrap_or_default()
    }

    pub fn as_slice(&self) -> &[(u64, u64)] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many integers the ranges hold.
    pub fn count(&self) -> u64 {
        self.0.iter().map(|&(begin, end)| end - begin + 1).sum()
    }

    pub fn contains_value(&self, value: u64) -> bool {
        self.0.iter().any(|&(begin, end)| begin <= value && value <= end)
    }

    fn coalesce(sorted: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(sorted.len());
        for (begin, end) in sorted {
            match merged.last_mut() {
                Some(last) if begin <= last.1.saturating_add(1) => last.1 = last.1.max(end),
                _ => merged.push((begin, end)),
            }
        }
        merged
    }

    pub fn union(&self, other: &Ranges) -> Ranges {
        let mut all = self.0.clone();
        all.extend_from_slice(&other.0);
        all.sort_unstable();
        Ranges(Self::coalesce(all))
    }

    pub fn contains(&self, other: &Ranges) -> bool {
        other.0.iter().all(|&(begin, end)| {
            self.0.iter().any(|&(own_begin, own_end)| own_begin <= begin && end <= own_end)
        })
    }

    /// Removes `other`; ranges of `other` outside `self` are ignored.
    pub fn difference(&self, other: &Ranges) -> Ranges {
        let mut result = Vec::with_capacity(self.0.len() + 1);
        for &(begin, end) in &self.0 {
            let mut cursor = begin;
            let mut open = true;
            for &(cut_begin, cut_end) in &other.0 {
                if cut_end < cursor || cut_begin > end {
                    continue;
                }
                if cut_begin > cursor {
                    result.push((cursor, cut_begin - 1));
                }
                if cut_end >= end {
                    open = false;
                    break;
                }
                cursor = cut_end + 1;
            }
            if open && cursor <= end {
                result.push((cursor, end));
            }
        }
        Ranges(result)
    }

    /// The first `count` integers, for offering a slice of a large range.
    pub fn take_first(&self, count: u64) -> Ranges {
        let mut left = count;
        let mut taken = Vec::new();
        for &(begin, end) in &self.0 {
            if left == 0 {
                break;
            }
            let size = end - begin + 1;
            if size <= left {
                taken.push((begin, end));
                left -= size;
            } else {
                taken.push((begin, begin + left - 1));
                left = 0;
            }
        }
        Ranges(taken)
    }
}

impl fmt::Display for Ranges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (position, (begin, end)) in self.0.iter().enumerate() {
            if position > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{begin}-{end}")?;
        }
        f.write_str("]")
    }
}

/// The value of one named resource.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Value {
    Scalar(Scalar),
    Ranges(Ranges),
    Set(BTreeSet<String>),
}

impl Value {
    fn kind(&self) -> &'static str {
        match self {
            Value::Scalar(_) => "scalar",
            Value::Ranges(_) => "ranges",
            Value::Set(_) => "set",
        }
    }

    fn is_empty(&self) -> bool {
        match self {
            Value::Scalar(scalar) => scalar.milli() <= 0,
            Value::Ranges(ranges) => ranges.is_empty(),
            Value::Set(set) => set.is_empty(),
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Scalar(scalar) => write!(f, "{scalar}"),
            Value::Ranges(ranges) => write!(f, "{ranges}"),
            Value::Set(set) => {
                f.write_str("{")?;
                for (position, item) in set.iter().enumerate() {
                    if position > 0 {
                        f.write_str(",")?;
                    }
                    f.write_str(item)?;
                }
                f.write_str("}")
            }
        }
    }
}

/// Who a resource is set aside for.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Reservation {
    /// Role `*`: offered to any role.
    Unreserved,
    /// Reserved by the agent's `--resources` flag, as `cpus(role):2`.
    Static { role: Role },
    /// Reserved at run time by a framework or operator (RESERVE).
    Dynamic { role: Role, principal: Option<String> },
}

impl Reservation {
    pub fn role(&self) -> Option<&Role> {
        match self {
            Reservation::Unreserved => None,
            Reservation::Static { role } | Reservation::Dynamic { role, .. } => Some(role),
        }
    }

    /// Whether a framework acting for `role` may be offered this resource: unreserved
    /// resources go to anyone, reserved ones to their role and its sub-roles.
    pub fn is_allocatable_to(&self, role: &Role) -> bool {
        match self.role() {
            None => true,
            Some(reserved_for) => role.is_same_or_descendant_of(reserved_for),
        }
    }
}

/// One named resource with its reservation.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Resource {
    /// Short names (`cpus`, `ports`) live inline: cloning a resource allocates nothing.
    pub name: SmolStr,
    pub reservation: Reservation,
    pub value: Value,
}

impl Resource {
    pub fn scalar(name: &str, amount: Scalar) -> Resource {
        Resource {
            name: SmolStr::new(name),
            reservation: Reservation::Unreserved,
            value: Value::Scalar(amount),
        }
    }

    pub fn ranges(name: &str, ranges: Ranges) -> Resource {
        Resource {
            name: SmolStr::new(name),
            reservation: Reservation::Unreserved,
            value: Value::Ranges(ranges),
        }
    }

    pub fn reserved(mut self, reservation: Reservation) -> Resource {
        self.reservation = reservation;
        self
    }
}

/// Why `a - b` could not be taken: `b` asks for more than `a` has.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error("not enough {name}{}: needed {needed}, available {available}", reservation_suffix(.reservation))]
pub struct Shortfall {
    pub name: SmolStr,
    pub reservation: Reservation,
    pub needed: String,
    pub available: String,
}

fn reservation_suffix(reservation: &Reservation) -> String {
    match reservation.role() {
        None => String::new(),
        Some(role) => format!("({role})"),
    }
}

/// A normalized bag of resources: at most one entry per (name, reservation), sorted, with no
/// empty entries, so that equal bags compare and encode equal.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Resources(Vec<Resource>);

impl Resources {
    pub fn new() -> Resources {
        Resources(Vec::new())
    }

    /// Builds a bag, merging entries of the same name and reservation. Fails when one name
    /// carries two kinds of value.
    pub fn from_list(list: Vec<Resource>) -> Result<Resources, String> {
        let mut bag = Resources::new();
        for resource in list {
            bag.try_add_one(resource)?;
        }
        Ok(bag)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Resource> {
        self.0.iter()
    }

    pub fn as_slice(&self) -> &[Resource] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn position(&self, name: &str, reservation: &Reservation) -> Result<usize, usize> {
        self.0.binary_search_by(|probe| {
            (probe.name.as_str(), &probe.reservation).cmp(&(name, reservation))
        })
    }

    fn try_add_one(&mut self, resource: Resource) -> Result<(), String> {
        if resource.value.is_empty() {
            return Ok(());
        }
        if let Some(other) = self.0.iter().find(|r| r.name == resource.name) {
            if other.value.kind() != resource.value.kind() {
                return Err(format!(
                    "resource '{}' is both {} and {}",
                    resource.name,
                    other.value.kind(),
                    resource.value.kind()
                ));
            }
        }
        match self.position(&resource.name, &resource.reservation) {
            Ok(index) => {
                let existing = &mut self.0[index].value;
                match (existing, resource.value) {
                    (Value::Scalar(a), Value::Scalar(b)) => *a += b,
                    (Value::Ranges(a), Value::Ranges(b)) => *a = a.union(&b),
                    (Value::Set(a), Value::Set(b)) => a.extend(b),
                    // Kinds were checked above; a clash cannot reach here.
                    _ => {}
                }
            }
            Err(index) => self.0.insert(index, resource),
        }
        Ok(())
    }

    /// Adds `other` in place. Entries whose kind clashes with ours are skipped: both bags
    /// come from validated input, where each name has one kind.
    pub fn add(&mut self, other: &Resources) {
        for resource in &other.0 {
            // A scalar whose entry is already here is added without copying the resource, found
            // by equality (bags are a handful of entries): summing many tasks' resources, as
            // the state reads do, is mostly that.
            if let Value::Scalar(amount) = &resource.value {
                let same = self.0.iter_mut().find(|own| {
                    own.name == resource.name && own.reservation == resource.reservation
                });
                if let Some(Resource { value: Value::Scalar(sum), .. }) = same {
                    *sum += *amount;
                    continue;
                }
            }
            let _ = self.try_add_one(resource.clone());
        }
    }

    pub fn plus(&self, other: &Resources) -> Resources {
        let mut sum = self.clone();
        sum.add(other);
        sum
    }

    /// Whether every resource of `other` is here, with the same reservation.
    pub fn contains(&self, other: &Resources) -> bool {
        other.0.iter().all(|wanted| match self.position(&wanted.name, &wanted.reservation) {
            Err(_) => false,
            Ok(index) => value_contains(&self.0[index].value, &wanted.value),
        })
    }

    /// `self - other`, or the first resource that is short.
    pub fn checked_sub(&self, other: &Resources) -> Result<Resources, Shortfall> {
        let mut result = self.clone();
        for wanted in &other.0 {
            let available = result.position(&wanted.name, &wanted.reservation).ok();
            let shortfall = || Shortfall {
                name: wanted.name.clone(),
                reservation: wanted.reservation.clone(),
                needed: wanted.value.to_string(),
                available: available
                    .map(|index| result.0[index].value.to_string())
                    .unwrap_or_else(|| "0".to_owned()),
            };
            let Some(index) = available else { return Err(shortfall()) };
            if !value_contains(&result.0[index].value, &wanted.value) {
                return Err(shortfall());
            }
            let remaining = match (&result.0[index].value, &wanted.value) {
                (Value::Scalar(a), Value::Scalar(b)) => Value::Scalar(*a - *b),
                (Value::Ranges(a), Value::Ranges(b)) => Value::Ranges(a.difference(b)),
                (Value::Set(a), Value::Set(b)) => Value::Set(a.difference(b).cloned().collect()),
                _ => return Err(shortfall()),
            };
            if remaining.is_empty() {
                result.0.remove(index);
            } else {
                result.0[index].value = remaining;
            }
        }
        Ok(result)
    }

    /// Whether `wanted` fits in what is left of `self` once every bag in `used` is taken out,
    /// or the first resource that is short. Scalars are checked without building the
    /// remainder, which matters on the offer path.
    pub fn check_fits(&self, used: &[&Resources], wanted: &Resources) -> Result<(), Shortfall> {
        let fits = wanted.0.iter().all(|want| {
            let Ok(index) = self.position(&want.name, &want.reservation) else { return false };
            match (&self.0[index].value, &want.value) {
                (Value::Scalar(have), Value::Scalar(need)) => {
                    let mut left = *have;
                    for bag in used {
                        if let Ok(at) = bag.position(&want.name, &want.reservation) {
                            if let Value::Scalar(taken) = bag.0[at].value {
                                left = left.saturating_sub(taken);
                            }
                        }
                    }
                    left >= *need
                }
                _ => {
                    let single = Resources(vec![self.0[index].clone()]);
                    let left = used.iter().fold(single, |left, bag| left.saturating_sub(bag));
                    left.contains(&Resources(vec![want.clone()]))
                }
            }
        });
        if fits {
            return Ok(());
        }
        // Only on failure: build the remainder to name what is short and by how much.
        let left = used.iter().fold(self.clone(), |left, bag| left.saturating_sub(bag));
        left.checked_sub(wanted).map(|_| ())
    }

    /// `self - other`, dropping whatever of `other` is not here.
    pub fn saturating_sub(&self, other: &Resources) -> Resources {
        let mut result = self.clone();
        for wanted in &other.0 {
            let Ok(index) = result.position(&wanted.name, &wanted.reservation) else { continue };
            let remaining = match (&result.0[index].value, &wanted.value) {
                (Value::Scalar(a), Value::Scalar(b)) => Value::Scalar(a.saturating_sub(*b)),
                (Value::Ranges(a), Value::Ranges(b)) => Value::Ranges(a.difference(b)),
                (Value::Set(a), Value::Set(b)) => Value::Set(a.difference(b).cloned().collect()),
                _ => continue,
            };
            if remaining.is_empty() {
                result.0.remove(index);
            } else {
                result.0[index].value = remaining;
            }
        }
        result
    }

    /// The total of a scalar across all reservations.
    pub fn scalar(&self, name: &str) -> Scalar {
        self.0
            .iter()
            .filter(|r| r.name == name)
            .filter_map(|r| match r.value {
                Value::Scalar(amount) => Some(amount),
                _ => None,
            })
            .fold(Scalar::ZERO, |sum, amount| sum + amount)
    }

    /// The union of a ranges resource across all reservations.
    pub fn ranges(&self, name: &str) -> Ranges {
        self.0
            .iter()
            .filter(|r| r.name == name)
            .filter_map(|r| match &r.value {
                Value::Ranges(ranges) => Some(ranges),
                _ => None,
            })
            .fold(Ranges::default(), |sum, ranges| sum.union(ranges))
    }

    pub fn filter(&self, keep: impl Fn(&Resource) -> bool) -> Resources {
        Resources(self.0.iter().filter(|r| keep(r)).cloned().collect())
    }

    pub fn unreserved(&self) -> Resources {
        self.filter(|r| r.reservation == Reservation::Unreserved)
    }

    /// What a framework acting for `role` may be offered from this bag.
    pub fn allocatable_to(&self, role: &Role) -> Resources {
        self.filter(|r| r.reservation.is_allocatable_to(role))
    }

    /// The same resources with every reservation removed (for quantity comparisons).
    pub fn flattened(&self) -> Resources {
        let mut flat = Resources::new();
        for resource in &self.0 {
            let _ = flat.try_add_one(Resource {
                name: resource.name.clone(),
                reservation: Reservation::Unreserved,
                value: resource.value.clone(),
            });
        }
        flat
    }

    /// Scalar quantities only, by name, summed over reservations.
    pub fn scalar_quantities(&self) -> Quantities {
        let mut quantities = Quantities::default();
        for resource in &self.0 {
            if let Value::Scalar(amount) = resource.value {
                quantities.add_one(&resource.name, amount);
            }
        }
        quantities
    }
}

fn value_contains(have: &Value, want: &Value) -> bool {
    match (have, want) {
        (Value::Scalar(a), Value::Scalar(b)) => a >= b,
        (Value::Ranges(a), Value::Ranges(b)) => a.contains(b),
        (Value::Set(a), Value::Set(b)) => b.is_subset(a),
        _ => false,
    }
}

impl fmt::Display for Resources {
    /// The Mesos text form: `cpus:4;mem:8192;ports:[31000-32000]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (position, resource) in self.0.iter().enumerate() {
            if position > 0 {
                f.write_str(";")?;
            }
            f.write_str(&resource.name)?;
            if let Some(role) = resource.reservation.role() {
                write!(f, "({role})")?;
            }
            write!(f, ":{}", resource.value)?;
        }
        Ok(())
    }
}

/// Scalar amounts by name, for shares, quotas and minimum allocatable resources.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Quantities(Vec<(SmolStr, Scalar)>);

impl Quantities {
    pub fn from_pairs(pairs: &[(&str, Scalar)]) -> Quantities {
        let mut quantities = Quantities::default();
        for (name, amount) in pairs {
            quantities.add_one(name, *amount);
        }
        quantities
    }

    pub fn add_one(&mut self, name: &str, amount: Scalar) {
        match self.0.binary_search_by(|(probe, _)| probe.as_str().cmp(name)) {
            Ok(index) => self.0[index].1 += amount,
            Err(index) => self.0.insert(index, (SmolStr::new(name), amount)),
        }
    }

    pub fn get(&self, name: &str) -> Scalar {
        match self.0.binary_search_by(|(probe, _)| probe.as_str().cmp(name)) {
            Ok(index) => self.0[index].1,
            Err(_) => Scalar::ZERO,
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, Scalar)> {
        self.0.iter().map(|(name, amount)| (name.as_str(), *amount))
    }

    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|(_, amount)| amount.is_zero())
    }

    /// Whether every amount here is at most the same-named amount of `other`.
    pub fn fits_within(&self, other: &Quantities) -> bool {
        self.iter().all(|(name, amount)| amount <= other.get(name))
    }
}

/// Where in a resource string parsing failed, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid resources at '{fragment}' (item {item}): {problem}")]
pub struct ResourceParseError {
    /// One-based position of the `;`-separated item.
    pub item: usize,
    pub fragment: String,
    pub problem: String,
}

/// Parses the Mesos `--resources` text syntax:
/// `cpus:4;mem:8192;disk(ops):100;ports:[31000-32000];zones:{a,b}`.
pub fn parse_resources(text: &str) -> Result<Resources, ResourceParseError> {
    let mut bag = Resources::new();
    for (position, fragment) in text.split(';').enumerate() {
        let item = position + 1;
        let fragment = fragment.trim();
        if fragment.is_empty() {
            continue;
        }
        let error =
            |problem: String| ResourceParseError { item, fragment: fragment.to_owned(), problem };
        let (head, value_text) =
            fragment.split_once(':').ok_or_else(|| error("expected 'name:value'".to_owned()))?;
        let (name, reservation) = parse_head(head.trim()).map_err(&error)?;
        let value = parse_value(value_text.trim()).map_err(&error)?;
        if let Value::Scalar(amount) = &value {
            if amount.milli() < 0 {
                return Err(error(format!("{name} must not be negative")));
            }
        }
        bag.try_add_one(Resource { name, reservation, value }).map_err(error)?;
    }
    Ok(bag)
}

fn parse_head(head: &str) -> Result<(SmolStr, Reservation), String> {
    let (name, reservation) = match head.split_once('(') {
        None => (head, Reservation::Unreserved),
        Some((name, rest)) => {
            let role_text = rest
                .strip_suffix(')')
                .ok_or_else(|| format!("'{head}' opens a role with '(' but does not close it"))?;
            let reservation = if role_text == "*" {
                Reservation::Unreserved
            } else {
                Reservation::Static { role: Role::parse(role_text)? }
            };
            (name, reservation)
        }
    };
    if name.is_empty() {
        return Err("resource name is empty".to_owned());
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.') {
        return Err(format!(
            "resource name '{name}' has characters other than letters, digits, '_', '-', '.'"
        ));
    }
    Ok((SmolStr::new(name), reservation))
}

fn parse_value(text: &str) -> Result<Value, String> {
    if let Some(inner) = text.strip_prefix('[') {
        let inner =
            inner.strip_suffix(']').ok_or("ranges open with '[' but do not close with ']'")?;
        let mut ranges = Vec::new();
        for part in inner.split(',') {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let (begin, end) =
                part.split_once('-').ok_or_else(|| format!("range '{part}' is not 'begin-end'"))?;
            let begin: u64 = begin
                .trim()
                .parse()
                .map_err(|_| format!("range start '{begin}' is not a whole number"))?;
            let end: u64 = end
                .trim()
                .parse()
                .map_err(|_| format!("range end '{end}' is not a whole number"))?;
            ranges.push((begin, end));
        }
        return Ranges::new(ranges).map(Value::Ranges);
    }
    if let Some(inner) = text.strip_prefix('{') {
        let inner =
            inner.strip_suffix('}').ok_or("set opens with '{' but does not close with '}'")?;
        let items: BTreeSet<String> =
            inner.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect();
        return Ok(Value::Set(items));
    }
    text.parse::<Scalar>().map(Value::Scalar)
}

impl FromStr for Resources {
    type Err = ResourceParseError;
    fn from_str(text: &str) -> Result<Resources, ResourceParseError> {
        parse_resources(text)
    }
}
