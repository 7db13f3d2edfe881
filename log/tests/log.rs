//! The crate's one integration-test binary; each area is a submodule under `tests/log/`.

mod log {
    mod audit;
    mod backup;
    mod cluster;
    mod crash;
    mod large;
    mod membership;
    mod prevote;
    mod standing;
    mod subscribe;
    mod suite;
    pub mod support;
}
