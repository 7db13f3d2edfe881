//! Every master and agent in its own network namespace, joined by veth pairs to a bridge in
//! the root namespace (where the driver runs and reaches them all), on a private /24 chosen
//! per run. Faults are iptables rules inside the namespaces, in chains of our own so healing
//! is one flush:
//!
//! - a two-way cut of `a`–`b` drops every packet between them, established connections too;
//! - a one-way cut "`a` cannot reach `b`" drops, at `b`, the packets of connections `a`
//!   opened (conntrack's ORIGINAL direction), while connections `b` opens to `a` still work.
//!
//! Hosts with Docker set `bridge-nf-call-iptables` and a FORWARD policy of DROP, which would
//! drop traffic between two namespaces on our bridge: a FORWARD rule lets our bridge's
//! traffic through, and goes with the bridge.
//!
//! Names carry the driver's pid (`crl<pid>-m1`, bridge `crl<pid>br`): [`remove_stale`] deletes
//! those of runs whose driver is gone, so concurrent runs never touch each other's.

use std::collections::BTreeMap;
use std::process::Command;

use anyhow::{bail, Context};

/// One namespace.
#[derive(Clone, Debug)]
pub struct Host {
    pub name: String,
    pub namespace: String,
    pub ip: String,
    veth: String,
}

pub struct Net {
    pid: u32,
    bridge: String,
    pub gateway: String,
    hosts: BTreeMap<String, Host>,
    destroyed: bool,
}

fn run(program: &str, args: &[&str]) -> anyhow::Result<String> {
    let output = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("cannot run {program}"))?;
    if !output.status.success() {
        bail!(
            "{program} {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Lets traffic between the namespaces on `bridge` through the host's FORWARD chain.
fn forward_rule<'a>(action: &'a str, bridge: &'a str) -> Vec<&'a str> {
    vec!["-w", action, "FORWARD", "-i", bridge, "-o", bridge, "-j", "ACCEPT"]
}

fn prefix_of(pid: u32) -> String {
    format!("10.{}.{}", 100 + (pid / 256) % 150, pid % 256)
}

fn alive_driver(pid: u32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .is_ok_and(|cmdline| String::from_utf8_lossy(&cmdline).contains("corral-chaos"))
}

/// Deletes the namespaces and bridges of earlier runs whose driver has died.
pub fn remove_stale() -> anyhow::Result<Vec<String>> {
    let mut removed = Vec::new();
    let parse_pid = |name: &str, suffix_sep: char| -> Option<u32> {
        let rest = name.strip_prefix("crl")?;
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let after = &rest[digits.len()..];
        (after.starts_with(suffix_sep) || (suffix_sep == 'b' && after == "br"))
            .then(|| digits.parse().ok())
            .flatten()
    };
    for line in run("ip", &["netns", "list"])?.lines() {
        let Some(name) = line.split_whitespace().next() else { continue };
        if let Some(pid) = parse_pid(name, '-') {
            if !alive_driver(pid) {
                kill_namespace_processes(name);
                let _ = run("ip", &["netns", "del", name]);
                removed.push(name.to_owned());
            }
        }
    }
    for line in run("iptables", &["-w", "-S", "FORWARD"])?.lines() {
        let Some(bridge) = line.split_whitespace().skip_while(|word| *word != "-i").nth(1) else {
            continue;
        };
        if parse_pid(bridge, 'b').is_some_and(|pid| !alive_driver(pid)) {
            let rule: Vec<&str> = line.split_whitespace().skip(2).collect();
            let mut delete = vec!["-w", "-D", "FORWARD"];
            delete.extend(rule);
            let _ = run("iptables", &delete);
            removed.push(format!("FORWARD rule for {bridge}"));
        }
    }
    for line in run("ip", &["-o", "link", "show", "type", "bridge"])?.lines() {
        let Some(name) = line.split(':').nth(1).map(str::trim) else { continue };
        if let Some(pid) = parse_pid(name, 'b') {
            if !alive_driver(pid) {
                let _ = run("ip", &["link", "del", name]);
                removed.push(name.to_owned());
            }
        }
    }
    Ok(removed)
}

fn kill_namespace_processes(namespace: &str) {
    let Ok(pids) = run("ip", &["netns", "pids", namespace]) else { return };
    for pid in pids.split_whitespace().filter_map(|pid| pid.parse::<i32>().ok()) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

impl Net {
    /// Creates the bridge and one namespace per name, in order (`.11`, `.12`, …).
    pub fn create(names: &[String]) -> anyhow::Result<Net> {
        let pid = std::process::id();
        let prefix = prefix_of(pid);
        let routes = run("ip", &["route"])?;
        if routes.contains(&format!("{prefix}.")) {
            bail!("{prefix}.0/24 is already routed here; another run may own it");
        }
        let bridge = format!("crl{pid}br");
        let gateway = format!("{prefix}.1");
        let mut net = Net {
            pid,
            bridge: bridge.clone(),
            gateway: gateway.clone(),
            hosts: BTreeMap::new(),
            destroyed: false,
        };
        run("ip", &["link", "add", &bridge, "type", "bridge"])?;
        run("ip", &["addr", "add", &format!("{gateway}/24"), "dev", &bridge])?;
        run("ip", &["link", "set", &bridge, "up"])?;
        run("iptables", &forward_rule("-I", &bridge))?;
        for (number, name) in names.iter().enumerate() {
            let namespace = format!("crl{pid}-{name}");
            let veth = format!("crl{pid}{name}");
            if veth.len() > 15 {
                bail!("interface name {veth} is too long");
            }
            let ip = format!("{prefix}.{}", 11 + number);
            run("ip", &["netns", "add", &namespace])?;
            net.hosts.insert(
                name.clone(),
                Host {
                    name: name.clone(),
                    namespace: namespace.clone(),
                    ip: ip.clone(),
                    veth: veth.clone(),
                },
            );
            run(
                "ip",
                &[
                    "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns",
                    &namespace,
                ],
            )?;
            run("ip", &["link", "set", &veth, "master", &bridge, "up"])?;
            run("ip", &["-n", &namespace, "addr", "add", &format!("{ip}/24"), "dev", "eth0"])?;
            run("ip", &["-n", &namespace, "link", "set", "eth0", "up"])?;
            run("ip", &["-n", &namespace, "link", "set", "lo", "up"])?;
            // Our chains, and connection tracking from the first packet on, so a one-way cut
            // knows who opened each connection.
            let ipt = |args: &[&str]| -> anyhow::Result<String> {
                let mut full = vec!["netns", "exec", &namespace, "iptables", "-w"];
                full.extend_from_slice(args);
                run("ip", &full)
            };
            ipt(&["-N", "CHAOS_IN"])?;
            ipt(&["-N", "CHAOS_OUT"])?;
            ipt(&[
                "-A",
                "INPUT",
                "-m",
                "conntrack",
                "--ctstate",
                "NEW,ESTABLISHED,RELATED,INVALID",
            ])?;
            ipt(&["-A", "INPUT", "-j", "CHAOS_IN"])?;
            ipt(&["-A", "OUTPUT", "-j", "CHAOS_OUT"])?;
        }
        Ok(net)
    }

    pub fn host(&self, name: &str) -> &Host {
        self.hosts.get(name).unwrap_or_else(|| panic!("no host named {name}"))
    }

    fn iptables(&self, on: &str, args: &[&str]) -> anyhow::Result<()> {
        let namespace = &self.host(on).namespace;
        let mut full = vec!["netns", "exec", namespace.as_str(), "iptables", "-w"];
        full.extend_from_slice(args);
        run("ip", &full).map(drop)
    }

    /// `a` and `b` cannot exchange a single packet.
    pub fn cut(&self, a: &str, b: &str) -> anyhow::Result<()> {
        let ip_b = self.host(b).ip.clone();
        self.iptables(a, &["-A", "CHAOS_IN", "-s", &ip_b, "-j", "DROP"])?;
        self.iptables(a, &["-A", "CHAOS_OUT", "-d", &ip_b, "-j", "DROP"])
    }

    /// `from` cannot reach `to` (its connections to `to`, open ones included, go silent);
    /// `to` still reaches `from`.
    pub fn cut_one_way(&self, from: &str, to: &str) -> anyhow::Result<()> {
        let ip_from = self.host(from).ip.clone();
        self.iptables(
            to,
            &[
                "-A",
                "CHAOS_IN",
                "-s",
                &ip_from,
                "-m",
                "conntrack",
                "--ctdir",
                "ORIGINAL",
                "-j",
                "DROP",
            ],
        )
    }

    /// Removes every cut.
    pub fn heal(&self) -> anyhow::Result<()> {
        for name in self.hosts.keys() {
            self.iptables(name, &["-F", "CHAOS_IN"])?;
            self.iptables(name, &["-F", "CHAOS_OUT"])?;
        }
        Ok(())
    }

    /// A command that runs `program` inside `name`'s namespace.
    pub fn command(&self, name: &str, program: &std::path::Path) -> tokio::process::Command {
        let mut command = tokio::process::Command::new("ip");
        command.args(["netns", "exec", &self.host(name).namespace]).arg(program);
        command
    }

    /// Kills whatever still runs in the namespaces (tasks the agents started included) and
    /// deletes them and the bridge.
    pub fn destroy(&mut self) {
        if self.destroyed {
            return;
        }
        self.destroyed = true;
        for host in self.hosts.values() {
            kill_namespace_processes(&host.namespace);
            let _ = run("ip", &["netns", "del", &host.namespace]);
            let _ = run("ip", &["link", "del", &host.veth]);
        }
        let _ = run("iptables", &forward_rule("-D", &self.bridge));
        let _ = run("ip", &["link", "del", &self.bridge]);
        let _ = self.pid;
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        self.destroy();
    }
}

#[cfg(test)]
mod tests {
    use super::prefix_of;

    #[test]
    fn runs_with_different_pids_get_different_subnets() {
        assert_ne!(prefix_of(4242), prefix_of(4243));
        assert_ne!(prefix_of(4242), prefix_of(4242 + 256));
        assert!(prefix_of(4_194_303).starts_with("10."));
    }
}
