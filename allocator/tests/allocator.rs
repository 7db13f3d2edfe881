//! Integration tests of corral-allocator, driven through real entries applied to
//! `ClusterState`: given this cluster, when the allocator runs, then these offers (and these
//! reasons).

mod allocator {
    pub mod support;

    mod cases;
    mod drf;
    mod explain;
    mod properties;
    mod quota;
}
