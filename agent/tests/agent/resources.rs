use corral_agent::resources::{
    agent_attributes, agent_resources, default_resources, merge_override, MachineFacts,
    ResourcesError,
};
use corral_state::{Ranges, Scalar};

const GIB: u64 = 1024 * 1024 * 1024;

#[test]
fn large_machines_keep_one_gib_of_memory_and_five_of_disk() {
    let facts = MachineFacts { cores: 8, total_memory_bytes: 16 * GIB, free_disk_bytes: 100 * GIB };
    let resources = default_resources(&facts);
    assert_eq!(resources.scalar("cpus"), Scalar::from_units(8));
    assert_eq!(resources.scalar("mem"), Scalar::from_units(15 * 1024));
    assert_eq!(resources.scalar("disk"), Scalar::from_units(95 * 1024));
    assert_eq!(resources.ranges("ports"), Ranges::single(31000, 32000));
}

#[test]
fn small_machines_offer_half_their_memory_and_disk() {
    let facts = MachineFacts { cores: 1, total_memory_bytes: GIB, free_disk_bytes: 8 * GIB };
    let resources = default_resources(&facts);
    assert_eq!(resources.scalar("mem"), Scalar::from_units(512));
    assert_eq!(resources.scalar("disk"), Scalar::from_units(4 * 1024));
}

#[test]
fn an_override_replaces_only_the_resources_it_names() {
    let facts = MachineFacts { cores: 8, total_memory_bytes: 16 * GIB, free_disk_bytes: 100 * GIB };
    let merged =
        merge_override(&default_resources(&facts), Some("cpus:2;ports:[5000-5001];gpus:1"))
            .expect("valid override");
    assert_eq!(merged.scalar("cpus"), Scalar::from_units(2));
    assert_eq!(merged.scalar("mem"), Scalar::from_units(15 * 1024));
    assert_eq!(merged.scalar("gpus"), Scalar::from_units(1));
    assert_eq!(merged.ranges("ports"), Ranges::single(5000, 5001));
}

#[test]
fn malformed_resources_are_refused_with_the_item_and_problem() {
    let dir = tempfile::tempdir().expect("temp dir");
    let error = agent_resources(dir.path(), Some("cpus:4;mem:lots")).expect_err("malformed");
    let text = error.to_string();
    assert!(matches!(error, ResourcesError::InvalidResources(_)));
    assert!(
        text.contains("--resources") && text.contains("mem:lots") && text.contains("item 2"),
        "{text}"
    );

    let ports = agent_resources(dir.path(), Some("ports:31000")).expect_err("ports must be ranges");
    assert!(ports.to_string().contains("ports"), "{ports}");
    let kinds = agent_resources(dir.path(), Some("cpus:{a,b}")).expect_err("cpus must be a number");
    assert!(kinds.to_string().contains("cpus"), "{kinds}");
}

#[test]
fn this_machine_is_detected() {
    let dir = tempfile::tempdir().expect("temp dir");
    let resources = agent_resources(dir.path(), None).expect("detection works here");
    let cores = std::thread::available_parallelism().expect("cores").get() as i64;
    assert_eq!(resources.scalar("cpus"), Scalar::from_units(cores));
    assert!(resources.scalar("mem") > Scalar::ZERO);
    assert!(resources.scalar("disk") > Scalar::ZERO);
}

#[test]
fn attributes_parse_and_malformed_ones_are_named() {
    let attributes = agent_attributes(Some("rack:a;zone:2")).expect("valid");
    assert_eq!(attributes.get("rack"), Some("a"));
    let error = agent_attributes(Some("rack")).expect_err("malformed");
    assert!(
        error.to_string().contains("--attributes") && error.to_string().contains("rack"),
        "{error}"
    );
}
