//! The built-in service scheduler's decisions, as a pure function of the state: which
//! instances to kill, which to launch on which offers, which offers to decline, whether to
//! suppress or revive, and why each offer was or was not used.
//!
//! Sans-IO: no clock (`now` is an input), no randomness (task ids come from the caller), no
//! async. Every decision is re-derived from the state each round, so a plan that the log
//! refuses (a deposed leader's duplicate, a stale configuration) is simply planned again
//! from what the log then says.

use std::collections::{BTreeMap, BTreeSet};

use corral_state::model::{Agent, Instance, MachineMode, ServiceApp, TaskInfo};
use corral_state::resources::Value;
use corral_state::{
    AgentId, AppId, ClusterState, FrameworkId, OfferId, Ranges, Reservation, Resource, Resources,
    Role, Scalar, ServiceLaunch, TaskId, Timestamp,
};

use super::app::{AppDefinition, KillSelection, LaunchError};
use super::constraints::{AppConstraints, Placement};
use super::offers::NoMatchReason;

/// Everything one scheduling round decided. The scheduler proposes the kills first; the rest
/// does not depend on them (a killed instance holds its room until it ends).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub kills: Vec<TaskId>,
    pub launches: Vec<AgentLaunch>,
    pub declines: Vec<OfferId>,
    /// Roles to stop receiving offers for: no app of theirs waits for an instance.
    pub suppress: Vec<Role>,
    /// Suppressed roles an app now needs offers for.
    pub revive: Vec<Role>,
    pub verdicts: Vec<OfferVerdict>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self == &Plan::default()
    }
}

/// Instances launched on one agent, from that agent's offers of one role (an ACCEPT takes
/// offers of one agent and one role only).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentLaunch {
    pub agent_id: AgentId,
    pub role: Role,
    pub offer_ids: Vec<OfferId>,
    pub launches: Vec<ServiceLaunch>,
}

/// What one app made of one agent's offers of one role.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OfferVerdict {
    pub app_id: AppId,
    pub agent_id: AgentId,
    pub hostname: String,
    pub offer_ids: Vec<OfferId>,
    pub verdict: Verdict,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Used,
    Unused { reasons: Vec<NoMatchReason>, details: Vec<String> },
}

/// Plans one round for the built-in framework. `definitions` holds the parsed definition of
/// every app that has one; an app without one is left alone (neither launched nor killed).
/// `new_task_id` is asked for an id only for an instance actually planned.
pub fn plan(
    state: &ClusterState,
    definitions: &BTreeMap<AppId, AppDefinition>,
    now: Timestamp,
    new_task_id: &mut dyn FnMut(&AppId) -> TaskId,
) -> Plan {
    let mut plan = Plan::default();
    let Some(framework_id) = state.services().framework_id.clone() else { return plan };
    let round = Round { state, framework_id: &framework_id };

    plan.kills.extend(round.instances_of_removed_apps());
    let mut waiting = Vec::new();
    let mut roles_wanted: BTreeSet<Role> = BTreeSet::new();
    for (app_id, app) in &state.services().apps {
        let Some(definition) = definitions.get(app_id) else { continue };
        let needs = round.app_needs(app, definition, now);
        plan.kills.extend(needs.kills.iter().cloned());
        if needs.missing > 0 {
            roles_wanted.insert(app.spec.role.clone());
        }
        if needs.launchable > 0 {
            waiting.push(WaitingApp {
                app,
                definition,
                constraints: AppConstraints::new(&definition.constraints),
                count: needs.launchable,
                placed: needs.placed,
            });
        }
    }

    let mut pools = round.offer_pools();
    for app in &mut waiting {
        for pool in &mut pools {
            if app.count == 0 {
                break;
            }
            let verdict = place_on_pool(state, app, pool, new_task_id);
            plan.verdicts.push(OfferVerdict {
                app_id: app.app.id.clone(),
                agent_id: pool.agent.id.clone(),
                hostname: pool.agent.info.hostname.clone(),
                offer_ids: pool.offer_ids.clone(),
                verdict,
            });
        }
    }
    for pool in pools {
        if pool.launches.is_empty() {
            plan.declines.extend(pool.offer_ids);
            continue;
        }
        plan.launches.push(AgentLaunch {
            agent_id: pool.agent.id.clone(),
            role: pool.role,
            offer_ids: pool.offer_ids,
            launches: pool.launches,
        });
    }

    if let Some(framework) = state.framework(&framework_id) {
        let suppressed = &framework.suppressed_roles;
        plan.suppress = framework
            .info
            .roles
            .iter()
            .filter(|role| !roles_wanted.contains(*role) && !suppressed.contains(*role))
            .cloned()
            .collect();
        plan.revive =
            roles_wanted.iter().filter(|role| suppressed.contains(*role)).cloned().collect();
    }
    plan
}

struct Round<'a> {
    state: &'a ClusterState,
    framework_id: &'a FrameworkId,
}

/// A live instance as the round sees it.
struct LiveInstance<'a> {
    task_id: &'a TaskId,
    instance: &'a Instance,
    /// RUNNING, healthy when health-checked, and not being killed.
    ready: bool,
    killing: bool,
}

/// What one app needs this round.
struct AppNeeds {
    kills: Vec<TaskId>,
    /// Instances of the current configuration the app misses. While any are missing the
    /// app keeps its role's offers coming, even when its upgrade strategy or a launch delay
    /// holds the launch back for now: suppressing and reviving at every step of a rolling
    /// replacement would only add round trips.
    missing: u32,
    /// What may be launched now: the missing instances that fit in the upgrade strategy,
    /// and none during a launch delay.
    launchable: u32,
    /// Agents of the instances that stay, for constraints.
    placed: Vec<AgentId>,
}

impl<'a> Round<'a> {
    fn is_killing(&self, task_id: &TaskId) -> bool {
        self.state.task(self.framework_id, task_id).is_none_or(|task| task.kill_requested.is_some())
    }

    /// Instances of deleted apps: the index keeps them until they end.
    fn instances_of_removed_apps(&self) -> Vec<TaskId> {
        let services = self.state.services();
        services
            .instances
            .iter()
            .filter(|(app_id, _)| !services.apps.contains_key(*app_id))
            .flat_map(|(_, instances)| instances.keys())
            .filter(|task_id| !self.is_killing(task_id))
            .cloned()
            .collect()
    }

    /// The instances that count for the app: inactive ones (unreachable for longer than the
    /// app's strategy tolerates) wait apart for their agent or their expunge.
    fn live_instances(&self, app: &ServiceApp) -> Vec<LiveInstance<'a>> {
        let now = self.state.now();
        self.state
            .services()
            .instances_of(&app.id)
            .filter(|(_, instance)| !instance.is_inactive(app.spec.unreachable, now))
            .map(|(task_id, instance)| {
                let task = self.state.task(self.framework_id, task_id);
                let killing = task.is_none_or(|task| task.kill_requested.is_some());
                // Each instance by its own version's health check: the old ones of an app
                // that has just gained checks were launched without one.
                let ready =
                    task.is_some_and(|task| task.is_ready(task.info.health_check.is_some()));
                LiveInstance { task_id, instance, ready, killing }
            })
            .collect()
    }

    fn app_needs(&self, app: &ServiceApp, definition: &AppDefinition, now: Timestamp) -> AppNeeds {
        let instances = app.spec.instances;
        let live = self.live_instances(app);
        let (mut current, mut old): (Vec<&LiveInstance<'_>>, Vec<&LiveInstance<'_>>) = live
            .iter()
            .filter(|instance| !instance.killing)
            .partition(|instance| instance.instance.config_version == app.config_version);
        let mut kills: Vec<TaskId> = Vec::new();
        let mut ready_total = live.iter().filter(|instance| instance.ready).count();

        sort_for_killing(&mut current, definition.kill_selection);
        let excess = current.len().saturating_sub(instances as usize);
        for doomed in current.drain(..excess) {
            ready_total -= usize::from(doomed.ready);
            kills.push(doomed.task_id.clone());
        }

        // Old instances go as fast as readiness allows: unready ones at once, ready ones
        // only while enough ready instances remain.
        let minimum_ready = app.spec.upgrade.minimum_healthy(instances) as usize;
        sort_for_killing(&mut old, definition.kill_selection);
        let mut kept_old = Vec::new();
        for instance in old {
            if !instance.ready {
                kills.push(instance.task_id.clone());
                continue;
            }
            if ready_total > minimum_ready {
                ready_total -= 1;
                kills.push(instance.task_id.clone());
                continue;
            }
            kept_old.push(instance);
        }

        // Counted as the state counts them in `LaunchServiceTasks`: instances being killed
        // stay live until they end.
        let live_total = u32::try_from(live.len()).unwrap_or(u32::MAX);
        let current_count = u32::try_from(current.len()).unwrap_or(u32::MAX);
        let missing = instances.saturating_sub(current_count);
        let room = app.spec.upgrade.maximum_live(instances).saturating_sub(live_total);
        let wanted = missing.min(room);
        let delayed = app.launch_delay.as_ref().is_some_and(|delay| delay.until > now);
        let placed = current
            .iter()
            .chain(&kept_old)
            .map(|instance| instance.instance.agent_id.clone())
            .collect();
        AppNeeds { kills, missing, launchable: if delayed { 0 } else { wanted }, placed }
    }

    /// The framework's outstanding offers, pooled per agent and role, in agent order.
    fn offer_pools(&self) -> Vec<OfferPool<'a>> {
        let Some(framework) = self.state.framework(self.framework_id) else { return Vec::new() };
        let mut pools: BTreeMap<(AgentId, Role), OfferPool<'a>> = BTreeMap::new();
        for offer_id in &framework.offers {
            let Some(offer) = self.state.offer(offer_id) else { continue };
            let Some(agent) = self.state.agent(&offer.agent_id) else { continue };
            let key = (offer.agent_id.clone(), offer.role.clone());
            let pool = pools.entry(key).or_insert_with(|| OfferPool {
                agent,
                role: offer.role.clone(),
                offer_ids: Vec::new(),
                offered: Resources::new(),
                remaining: Resources::new(),
                launches: Vec::new(),
                maintenance: self.state.machine_mode_of(&agent.info.hostname, &agent.info.address),
            });
            pool.offer_ids.push(offer_id.clone());
            pool.offered.add(&offer.resources);
            pool.remaining.add(&offer.resources);
        }
        pools.into_values().collect()
    }
}

/// Unready instances first (they serve nobody), then by the app's kill selection.
fn sort_for_killing(instances: &mut [&LiveInstance<'_>], selection: KillSelection) {
    instances.sort_by(|a, b| {
        let by_age = match selection {
            KillSelection::YoungestFirst => b.instance.launched_at.cmp(&a.instance.launched_at),
            KillSelection::OldestFirst => a.instance.launched_at.cmp(&b.instance.launched_at),
        };
        a.ready.cmp(&b.ready).then(by_age).then_with(|| a.task_id.cmp(b.task_id))
    });
}

struct WaitingApp<'a> {
    app: &'a ServiceApp,
    definition: &'a AppDefinition,
    constraints: AppConstraints,
    count: u32,
    placed: Vec<AgentId>,
}

struct OfferPool<'a> {
    agent: &'a Agent,
    role: Role,
    offer_ids: Vec<OfferId>,
    offered: Resources,
    /// What earlier placements this round left.
    remaining: Resources,
    launches: Vec<ServiceLaunch>,
    maintenance: MachineMode,
}

/// Places as many of the app's missing instances on the pool as fit; the verdict says
/// whether any did, or why none could.
fn place_on_pool(
    state: &ClusterState,
    app: &mut WaitingApp<'_>,
    pool: &mut OfferPool<'_>,
    new_task_id: &mut dyn FnMut(&AppId) -> TaskId,
) -> Verdict {
    let mut used = false;
    while app.count > 0 {
        match fit(state, app, pool) {
            Ok(mut task_info) => {
                task_info.task_id = new_task_id(&app.app.id);
                pool.remaining = pool.remaining.saturating_sub(&task_info.resources);
                pool.launches.push(ServiceLaunch {
                    app_id: app.app.id.clone(),
                    config_version: app.app.config_version,
                    task_info,
                });
                app.placed.push(pool.agent.id.clone());
                app.count -= 1;
                used = true;
            }
            Err(unused) if !used => return unused,
            Err(_) => break,
        }
    }
    Verdict::Used
}

/// The `TaskInfo` of one more instance on the pool (with a placeholder id), or why it does
/// not fit.
fn fit(
    state: &ClusterState,
    app: &WaitingApp<'_>,
    pool: &OfferPool<'_>,
) -> Result<TaskInfo, Verdict> {
    let hostname = &pool.agent.info.hostname;
    if matches!(pool.maintenance, MachineMode::Draining | MachineMode::Down) {
        let mode = if pool.maintenance == MachineMode::Down { "DOWN" } else { "DRAINING" };
        return Err(unused(
            vec![NoMatchReason::AgentMaintenance],
            vec![format!("{hostname} is in maintenance ({mode})")],
        ));
    }
    if pool.role != app.app.spec.role {
        return Err(unused(
            vec![NoMatchReason::UnfulfilledRole],
            vec![format!(
                "the offer is for role {}, the app runs as role {}",
                pool.role, app.app.spec.role
            )],
        ));
    }
    let accepted = &app.definition.accepted_resource_roles;
    let accepts = |resource: &Resource| {
        accepted.is_empty()
            || accepted.iter().any(|role| match resource.reservation.role() {
                None => role == "*",
                Some(reserved_for) => role == reserved_for.as_str(),
            })
    };
    if !pool.offered.iter().any(accepts) {
        return Err(unused(
            vec![NoMatchReason::UnfulfilledRole],
            vec![format!(
                "the offer holds no resources of the accepted roles {}",
                accepted.join(", ")
            )],
        ));
    }
    let usable = pool.remaining.filter(accepts);

    let mut reasons = Vec::new();
    let mut details = Vec::new();
    let definition = app.definition;
    // Where the others are matters only to constraints; an app without any (the common
    // case, and the large one) does not pay for listing them once per instance.
    if !definition.constraints.is_empty() {
        let placed: Vec<Placement<'_>> = app
            .placed
            .iter()
            .filter_map(|agent_id| state.agent(agent_id))
            .map(|agent| Placement {
                hostname: &agent.info.hostname,
                attributes: &agent.info.attributes,
            })
            .collect();
        let candidate = Placement {
            hostname: &pool.agent.info.hostname,
            attributes: &pool.agent.info.attributes,
        };
        if let Err(unmet) = app.constraints.check(&candidate, &placed) {
            reasons.push(NoMatchReason::UnfulfilledConstraint);
            details.push(unmet.detail);
        }
    }
    let scalars = [
        ("cpus", definition.cpus, NoMatchReason::InsufficientCpus),
        ("mem", definition.mem, NoMatchReason::InsufficientMemory),
        ("disk", definition.disk, NoMatchReason::InsufficientDisk),
        ("gpus", definition.gpus as f64, NoMatchReason::InsufficientGpus),
    ];
    for (name, needed, reason) in scalars {
        let needed = Scalar::from_f64(needed).unwrap_or(Scalar::ZERO);
        let available = usable.scalar(name);
        if available < needed {
            reasons.push(reason);
            details.push(format!(
                "needs {:?} {name}, offer has {:?}",
                needed.as_f64(),
                available.as_f64()
            ));
        }
    }
    let offered_ports = usable.ranges("ports");
    let placeholder = TaskId::new(format!("{}.planned", app.app.id.safe_name()));
    let task_info = match definition.task_info(pool.agent.id.clone(), placeholder, &offered_ports) {
        Ok(task_info) => Some(task_info),
        Err(error @ (LaunchError::PortNotOffered(_) | LaunchError::NotEnoughPorts)) => {
            reasons.push(NoMatchReason::InsufficientPorts);
            details.push(format!("{error}; offer has ports {offered_ports}"));
            None
        }
        Err(error) => {
            details.push(format!("the app cannot be launched: {error}"));
            None
        }
    };
    let Some(mut task_info) = task_info.filter(|_| details.is_empty()) else {
        return Err(unused(reasons, details));
    };
    let Some(claimed) = claim(&usable, &task_info.resources) else {
        return Err(unused(Vec::new(), vec!["the offer's resources do not fit".to_owned()]));
    };
    task_info.resources = claimed;
    Ok(task_info)
}

fn unused(reasons: Vec<NoMatchReason>, details: Vec<String>) -> Verdict {
    Verdict::Unused { reasons, details }
}

/// `wanted` (unreserved, as an app definition asks) drawn from `usable`, taking reserved
/// resources before unreserved ones so that the app's reservations are used first; `None`
/// when it does not fit.
fn claim(usable: &Resources, wanted: &Resources) -> Option<Resources> {
    let mut claimed = Vec::new();
    for want in wanted.iter() {
        let mut sources: Vec<&Resource> =
            usable.iter().filter(|resource| resource.name == want.name).collect();
        sources.sort_by_key(|resource| resource.reservation == Reservation::Unreserved);
        match &want.value {
            Value::Scalar(needed) => {
                let mut left = *needed;
                for source in sources {
                    let Value::Scalar(available) = source.value else { continue };
                    let taken = left.min(available);
                    if taken.is_zero() {
                        continue;
                    }
                    claimed.push(
                        Resource::scalar(&want.name, taken).reserved(source.reservation.clone()),
                    );
                    left = left - taken;
                }
                if !left.is_zero() {
                    return None;
                }
            }
            Value::Ranges(needed) => {
                let mut left = needed.clone();
                for source in sources {
                    let Value::Ranges(available) = &source.value else { continue };
                    let taken: Ranges = left.difference(&left.difference(available));
                    if taken.is_empty() {
                        continue;
                    }
                    left = left.difference(&taken);
                    claimed.push(
                        Resource::ranges(&want.name, taken).reserved(source.reservation.clone()),
                    );
                }
                if !left.is_empty() {
                    return None;
                }
            }
            Value::Set(_) => return None,
        }
    }
    Resources::from_list(claimed).ok()
}
