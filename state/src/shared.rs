//! Persistent ordered maps for the state's big collections. A clone is a pointer copy and a
//! change copies only the path to what changed, so a read can copy the whole state under the
//! lock in microseconds and render the copy outside it while commands keep applying.
//! Iteration is in key order and the encoding is that of a `BTreeMap` (a map, entries in key
//! order), so digests and snapshots are what they were.

/// An ordered map whose clones share structure (`imbl::OrdMap`).
pub type SharedMap<K, V> = imbl::OrdMap<K, V>;

/// An ordered set whose clones share structure (`imbl::OrdSet`).
pub type SharedSet<T> = imbl::OrdSet<T>;

/// What `BTreeMap` offers and `imbl::OrdMap` does not, with the same meaning.
pub(crate) trait SharedMapExt<K, V> {
    /// Keeps the entries `keep` accepts; the others are removed. Unlike `BTreeMap::retain`,
    /// `keep` sees values unchanged, so what is kept is not copied.
    fn retain(&mut self, keep: impl FnMut(&K, &V) -> bool);

    /// Calls `change` on every value in key order. Each value is reached through `get_mut`,
    /// so only the paths to values a copy still shares are copied.
    fn for_each_value_mut(&mut self, change: impl FnMut(&mut V));
}

impl<K: Ord + Clone, V: Clone> SharedMapExt<K, V> for SharedMap<K, V> {
    fn retain(&mut self, mut keep: impl FnMut(&K, &V) -> bool) {
        let gone: Vec<K> = self
            .iter()
            .filter(|(key, value)| !keep(key, value))
            .map(|(key, _)| key.clone())
            .collect();
        for key in gone {
            self.remove(&key);
        }
    }

    fn for_each_value_mut(&mut self, mut change: impl FnMut(&mut V)) {
        let keys: Vec<K> = self.keys().cloned().collect();
        for key in keys {
            change(self.get_mut(&key).expect("the key was just listed"));
        }
    }
}
