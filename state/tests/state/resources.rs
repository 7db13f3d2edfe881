use corral_state::{parse_resources, Ranges, Reservation, Resources, Role, Scalar};

#[test]
fn fixed_point_has_no_float_drift() {
    let a: Scalar = "0.1".parse().unwrap();
    let b: Scalar = "0.2".parse().unwrap();
    assert_eq!(a + b, "0.3".parse().unwrap());
    assert_eq!((a + b).to_string(), "0.3");
    let sum = res("cpus:0.1").plus(&res("cpus:0.2"));
    assert_eq!(sum, res("cpus:0.3"));
    assert_eq!(Scalar::from_f64(0.1 + 0.2), Some("0.3".parse().unwrap()));
}

#[test]
fn scalars_round_to_thousandths() {
    assert_eq!("1.0005".parse::<Scalar>().unwrap().milli(), 1001);
    assert_eq!("1.0004".parse::<Scalar>().unwrap().milli(), 1000);
    assert_eq!("2".parse::<Scalar>().unwrap().to_string(), "2");
    assert_eq!("2.50".parse::<Scalar>().unwrap().to_string(), "2.5");
    assert!("1.2.3".parse::<Scalar>().is_err());
    assert!("abc".parse::<Scalar>().is_err());
    assert!(".".parse::<Scalar>().is_err());
}

fn res(text: &str) -> Resources {
    text.parse().unwrap()
}

#[test]
fn parses_the_mesos_text_syntax() {
    let parsed = res("cpus:4;mem:8192;disk(ops):100;ports:[31000-32000, 5000-5001];zones:{a,b}");
    assert_eq!(parsed.scalar("cpus"), Scalar::from_units(4));
    assert_eq!(parsed.scalar("mem"), Scalar::from_units(8192));
    assert_eq!(parsed.scalar("disk"), Scalar::from_units(100));
    assert_eq!(parsed.ranges("ports").count(), 1001 + 2);
    let disk = parsed.iter().find(|r| r.name == "disk").unwrap();
    assert_eq!(disk.reservation, Reservation::Static { role: Role::parse("ops").unwrap() });
    // Display gives the same syntax back, normalized.
    assert_eq!(res(&parsed.to_string()), parsed);
}

#[test]
fn parse_errors_name_the_item_and_the_problem() {
    let error = parse_resources("cpus:4;mem:lots").unwrap_err();
    assert_eq!(error.item, 2);
    assert_eq!(error.fragment, "mem:lots");
    assert!(error.problem.contains("not a decimal number"), "{error}");

    let error = parse_resources("cpus4").unwrap_err();
    assert!(error.problem.contains("name:value"), "{error}");

    let error = parse_resources("ports:[2000-1000]").unwrap_err();
    assert!(error.problem.contains("ends before it begins"), "{error}");

    let error = parse_resources("cpus(eng:2").unwrap_err();
    assert!(error.problem.contains("does not close"), "{error}");

    let error = parse_resources("cpus:-1").unwrap_err();
    assert!(error.problem.contains("negative"), "{error}");

    let error = parse_resources("cpus:1;cpus:[1-2]").unwrap_err();
    assert!(error.problem.contains("both scalar and ranges"), "{error}");

    let error = parse_resources("cpus(/bad):1").unwrap_err();
    assert!(error.problem.contains("role"), "{error}");
}

#[test]
fn subtraction_reports_what_is_short() {
    let total = res("cpus:2;mem:1024;ports:[31000-31010]");
    assert_eq!(
        total.checked_sub(&res("cpus:1.5;mem:24")).unwrap(),
        res("cpus:0.5;mem:1000;ports:[31000-31010]")
    );
    let shortfall = total.checked_sub(&res("cpus:3")).unwrap_err();
    assert_eq!(shortfall.name, "cpus");
    assert_eq!(shortfall.needed, "3");
    assert_eq!(shortfall.available, "2");
    assert_eq!(shortfall.to_string(), "not enough cpus: needed 3, available 2");
    let shortfall = total.checked_sub(&res("ports:[31005-31020]")).unwrap_err();
    assert_eq!(shortfall.name, "ports");
    assert!(total.checked_sub(&res("gpus:1")).is_err());
}

#[test]
fn reservations_are_kept_apart() {
    let total = res("cpus:4;cpus(eng):2");
    assert_eq!(total.scalar("cpus"), Scalar::from_units(6));
    assert!(!total.contains(&res("cpus(web):1")));
    assert!(total.contains(&res("cpus(eng):2")));
    assert!(total.checked_sub(&res("cpus(eng):3")).is_err());
    let eng_web = Role::parse("eng/web").unwrap();
    assert_eq!(total.allocatable_to(&eng_web), total);
    assert_eq!(total.allocatable_to(&Role::parse("ops").unwrap()), res("cpus:4"));
    assert_eq!(total.unreserved(), res("cpus:4"));
    assert_eq!(total.flattened(), res("cpus:6"));
}

#[test]
fn ranges_union_difference_and_containment() {
    let a = Ranges::new(vec![(1, 5), (10, 20)]).unwrap();
    let b = Ranges::new(vec![(3, 12)]).unwrap();
    assert_eq!(a.union(&b).as_slice(), &[(1, 20)]);
    assert_eq!(a.difference(&b).as_slice(), &[(1, 2), (13, 20)]);
    assert!(a.contains(&Ranges::new(vec![(2, 4), (15, 15)]).unwrap()));
    assert!(!a.contains(&b));
    assert_eq!(Ranges::new(vec![(1, 2), (3, 4)]).unwrap().as_slice(), &[(1, 4)]);
    assert_eq!(a.take_first(7).as_slice(), &[(1, 5), (10, 11)]);
    assert_eq!(a.count(), 16);
}

#[test]
fn sets_add_and_subtract() {
    let total = res("zones:{a,b,c}");
    assert!(total.contains(&res("zones:{a,c}")));
    assert_eq!(total.checked_sub(&res("zones:{a}")).unwrap(), res("zones:{b,c}"));
    assert!(total.checked_sub(&res("zones:{d}")).is_err());
}

#[test]
fn roles_follow_mesos_rules() {
    for bad in ["", "/eng", "eng/", "eng//web", "eng/./web", "-eng", "eng web", "eng/*", "."] {
        assert!(Role::parse(bad).is_err(), "{bad:?} should be rejected");
    }
    let web = Role::parse("eng/web").unwrap();
    assert_eq!(web.parent(), Some(Role::parse("eng").unwrap()));
    assert!(web.is_same_or_descendant_of(&Role::parse("eng").unwrap()));
    assert!(!Role::parse("engineering")
        .unwrap()
        .is_same_or_descendant_of(&Role::parse("eng").unwrap()));
    assert_eq!(web.self_and_ancestors().len(), 2);
}

#[test]
fn fitting_after_what_is_used_names_the_shortfall() {
    let total = res("cpus:4;mem:1024;ports:[31000-31009]");
    let allocated = res("cpus:1;ports:[31000-31004]");
    let offered = res("cpus:2;mem:512");
    assert_eq!(
        total.check_fits(&[&allocated, &offered], &res("cpus:1;mem:512;ports:[31005-31009]")),
        Ok(())
    );
    let short = total.check_fits(&[&allocated, &offered], &res("cpus:1.5")).unwrap_err();
    assert_eq!(short.to_string(), "not enough cpus: needed 1.5, available 1");
    let taken_port =
        total.check_fits(&[&allocated, &offered], &res("ports:[31004-31004]")).unwrap_err();
    assert_eq!(taken_port.name, "ports");
    assert!(total.check_fits(&[], &res("gpus:1")).is_err());
}
