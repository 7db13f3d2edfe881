//! `/corral/v1/apps/{appId}/autoscaler`: an app's autoscaling policy, as state in the log,
//! beside (never inside) its Marathon definition, so `/v2/apps` stays what Marathon clients
//! expect.
//!
//! - `PUT` `{min, max, evaluationIntervalSeconds, metrics: [{type: cpu|memory,
//!   targetUtilization}, {type: prometheus, url, query, target}], tolerance, scaleUp:
//!   {stabilizationWindowSeconds, selectPolicy, policies: [{type: Percent|Pods, value,
//!   periodSeconds}]}, scaleDown: {…}}` sets it; what the body leaves out takes Kubernetes's
//!   defaults (min 1, interval 15 s, CPU at 80 %, tolerance 0.1, scale-up +100 % or +4 per
//!   15 s, scale-down window 300 s and 100 % per 15 s). A bad body is a 422 naming the
//!   field (`scaleUp.policies[0].periodSeconds`); an unknown app a 404. Answers the policy
//!   as stored, every default filled in.
//! - `GET` answers it (404 without one); `DELETE` removes it (the app keeps its instances).
//! - `GET …/autoscaler/decisions`: the scalings the log recorded (oldest first, each with
//!   its inputs, the counts, what limited it and its deployment), the stabilization
//!   window's recorded recommendations (`window`: `{at, count}`, oldest first, each holding
//!   until the next), and, from the leader, its latest evaluation of the app (a hold says
//!   why nothing happened).
//!
//! App ids contain slashes, so one wildcard route takes everything under `/corral/v1/apps/`.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use corral_log::ReadConsistency;
use corral_state::model::{
    AutoscalerPolicy, Decision, HoldReason, Limit, MetricReading, MetricTarget, Millionths,
    RateKind, RatePolicy, RecordedScaling, Scaling, ScalingRules, SelectPolicy,
};
use corral_state::{AppId, Command, Event};
use serde_json::{json, Map, Value};

use crate::error::ApiError;
use crate::master::Master;
use crate::routes::marathon_apps::{app_id_from_path, propose};
use crate::routes::misc::ReadOptions;

pub(crate) fn router() -> Router<Master> {
    Router::new()
        .route("/corral/v1/apps/{*rest}", get(get_under).put(put_under).delete(delete_under))
}

enum AutoscalerPath {
    Policy(AppId),
    Decisions(AppId),
}

impl AutoscalerPath {
    fn parse(rest: &str) -> Result<AutoscalerPath, ApiError> {
        let rest = rest.trim_end_matches('/');
        if let Some(app) = rest.strip_suffix("/autoscaler/decisions") {
            return Ok(AutoscalerPath::Decisions(app_id_from_path(app)?));
        }
        if let Some(app) = rest.strip_suffix("/autoscaler") {
            return Ok(AutoscalerPath::Policy(app_id_from_path(app)?));
        }
        Err(ApiError::NotFound(format!(
            "/corral/v1/apps/{rest}: only …/autoscaler and …/autoscaler/decisions are served here"
        )))
    }
}

async fn get_under(
    State(master): State<Master>,
    Path(rest): Path<String>,
    Query(options): Query<ReadOptions>,
) -> Result<Response, ApiError> {
    let consistency = options.consistency(&master)?;
    match AutoscalerPath::parse(&rest)? {
        AutoscalerPath::Policy(app_id) => get_policy(&master, consistency, app_id).await,
        AutoscalerPath::Decisions(app_id) => get_decisions(&master, consistency, app_id).await,
    }
}

async fn get_policy(
    master: &Master,
    consistency: ReadConsistency,
    app_id: AppId,
) -> Result<Response, ApiError> {
    let policy = master
        .read_state(consistency, {
            let app_id = app_id.clone();
            move |state| {
                state
                    .services()
                    .autoscalers
                    .get(&app_id)
                    .map(|autoscaler| autoscaler.policy.clone())
            }
        })
        .await?;
    let policy = policy.ok_or_else(|| no_autoscaler(&app_id))?;
    Ok(Json(render_policy(&app_id, &policy)).into_response())
}

async fn get_decisions(
    master: &Master,
    consistency: ReadConsistency,
    app_id: AppId,
) -> Result<Response, ApiError> {
    let recorded = master
        .read_state(consistency, {
            let app_id = app_id.clone();
            move |state| {
                state.services().autoscalers.get(&app_id).map(|autoscaler| {
                    let scalings: Vec<RecordedScaling> =
                        autoscaler.scalings.iter().cloned().collect();
                    (scalings, autoscaler.recommendations.clone())
                })
            }
        })
        .await?;
    let (scalings, window) = recorded.ok_or_else(|| no_autoscaler(&app_id))?;
    let latest = master.inner.autoscaler.latest(&app_id);
    Ok(Json(json!({
        "appId": app_id.as_str(),
        "scalings": scalings.iter().map(render_recorded).collect::<Vec<Value>>(),
        "window": window
            .iter()
            .map(|recommendation| {
                json!({"at": recommendation.at.to_rfc3339(), "count": recommendation.count})
            })
            .collect::<Vec<Value>>(),
        "latest": latest.map(|(at, decision)| {
            let mut rendered = render_decision(&decision);
            rendered["at"] = json!(at.to_rfc3339());
            rendered
        }),
    }))
    .into_response())
}

async fn put_under(
    State(master): State<Master>,
    Path(rest): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let AutoscalerPath::Policy(app_id) = AutoscalerPath::parse(&rest)? else {
        return Err(ApiError::NotFound("decisions are read-only".to_owned()));
    };
    master.redirect_if_follower()?;
    let policy = parse_policy(&body)?;
    policy.validate().map_err(|(field, problem)| ApiError::Unprocessable { field, problem })?;
    let events =
        propose(&master, Command::PutAutoscaler { app_id: app_id.clone(), policy }).await?;
    let stored = events.into_iter().find_map(|event| match event {
        Event::AutoscalerUpdated { policy, .. } => Some(policy),
        _ => None,
    });
    let stored = stored.ok_or_else(|| ApiError::Internal("no autoscaler event".to_owned()))?;
    Ok(Json(render_policy(&app_id, &stored)).into_response())
}

async fn delete_under(
    State(master): State<Master>,
    Path(rest): Path<String>,
) -> Result<Response, ApiError> {
    let AutoscalerPath::Policy(app_id) = AutoscalerPath::parse(&rest)? else {
        return Err(ApiError::NotFound("decisions are read-only".to_owned()));
    };
    master.redirect_if_follower()?;
    let exists = master
        .read_state(ReadConsistency::Linearizable, {
            let app_id = app_id.clone();
            move |state| state.services().autoscalers.contains_key(&app_id)
        })
        .await?;
    if !exists {
        return Err(no_autoscaler(&app_id));
    }
    propose(&master, Command::DeleteAutoscaler { app_id: app_id.clone() }).await?;
    Ok(Json(json!({"appId": app_id.as_str(), "deleted": true})).into_response())
}

fn no_autoscaler(app_id: &AppId) -> ApiError {
    ApiError::Unknown {
        field: "appId".to_owned(),
        problem: format!("app {app_id} has no autoscaler"),
    }
}

fn invalid(field: impl Into<String>, problem: impl Into<String>) -> ApiError {
    ApiError::Unprocessable { field: field.into(), problem: problem.into() }
}

/// Reads an object's fields, refusing any it does not know.
struct Fields<'a> {
    path: String,
    map: &'a Map<String, Value>,
}

impl<'a> Fields<'a> {
    fn new(path: &str, value: &'a Value, known: &[&str]) -> Result<Fields<'a>, ApiError> {
        let Value::Object(map) = value else {
            return Err(invalid(name_or_body(path), "must be a JSON object"));
        };
        if let Some(unknown) = map.keys().find(|key| !known.contains(&key.as_str())) {
            return Err(invalid(
                join(path, unknown),
                format!("is not a known field; known: {}", known.join(", ")),
            ));
        }
        Ok(Fields { path: path.to_owned(), map })
    }

    fn field(&self, name: &str) -> String {
        join(&self.path, name)
    }

    fn get(&self, name: &str) -> Option<&'a Value> {
        self.map.get(name).filter(|value| !value.is_null())
    }

    fn count(&self, name: &str) -> Result<Option<u32>, ApiError> {
        let Some(value) = self.get(name) else { return Ok(None) };
        value
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| invalid(self.field(name), "must be a whole number from 0 to 4294967295"))
    }

    fn number(&self, name: &str) -> Result<Option<f64>, ApiError> {
        let Some(value) = self.get(name) else { return Ok(None) };
        match value.as_f64() {
            Some(number) if number.is_finite() && number >= 0.0 => Ok(Some(number)),
            _ => Err(invalid(self.field(name), "must be a number, 0 or more")),
        }
    }

    fn seconds(&self, name: &str) -> Result<Option<Duration>, ApiError> {
        Ok(self.count(name)?.map(|seconds| Duration::from_secs(u64::from(seconds))))
    }

    fn text(&self, name: &str) -> Result<Option<&'a str>, ApiError> {
        let Some(value) = self.get(name) else { return Ok(None) };
        value.as_str().map(Some).ok_or_else(|| invalid(self.field(name), "must be a string"))
    }

    fn millionths(&self, name: &str) -> Result<Option<Millionths>, ApiError> {
        let Some(number) = self.number(name)? else { return Ok(None) };
        Millionths::from_f64(number)
            .map(Some)
            .ok_or_else(|| invalid(self.field(name), "is too large"))
    }

    fn required<T>(&self, name: &str, value: Option<T>) -> Result<T, ApiError> {
        value.ok_or_else(|| invalid(self.field(name), "is required"))
    }
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

fn name_or_body(path: &str) -> String {
    if path.is_empty() {
        "body".to_owned()
    } else {
        path.to_owned()
    }
}

pub(crate) fn parse_policy(body: &[u8]) -> Result<AutoscalerPolicy, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|error| invalid("body", format!("not JSON: {error}")))?;
    let fields = Fields::new(
        "",
        &value,
        &[
            "min",
            "max",
            "evaluationIntervalSeconds",
            "metrics",
            "tolerance",
            "scaleUp",
            "scaleDown",
        ],
    )?;
    let min = fields.count("min")?.unwrap_or(1);
    let max = fields.required("max", fields.count("max")?)?;
    let evaluation_interval =
        fields.seconds("evaluationIntervalSeconds")?.unwrap_or(Duration::from_secs(15));
    let metrics = match fields.get("metrics") {
        None => vec![MetricTarget::Cpu { target_utilization: Millionths::from_percent(80) }],
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(index, item)| parse_metric(&format!("metrics[{index}]"), item))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(invalid("metrics", "must be a list")),
    };
    let tolerance = fields.millionths("tolerance")?.unwrap_or(Millionths(100_000));
    let scale_up = parse_rules("scaleUp", fields.get("scaleUp"), ScalingRules::default_up())?;
    let scale_down =
        parse_rules("scaleDown", fields.get("scaleDown"), ScalingRules::default_down())?;
    Ok(AutoscalerPolicy { min, max, evaluation_interval, metrics, tolerance, scale_up, scale_down })
}

fn parse_metric(path: &str, value: &Value) -> Result<MetricTarget, ApiError> {
    let kind = value.get("type").and_then(Value::as_str);
    match kind {
        Some("cpu") | Some("memory") => {
            let fields = Fields::new(path, value, &["type", "targetUtilization"])?;
            let percent = fields.number("targetUtilization")?;
            let percent = fields.required("targetUtilization", percent)?;
            let target_utilization = Millionths::from_f64(percent / 100.0)
                .ok_or_else(|| invalid(fields.field("targetUtilization"), "is too large"))?;
            Ok(match kind {
                Some("cpu") => MetricTarget::Cpu { target_utilization },
                _ => MetricTarget::Memory { target_utilization },
            })
        }
        Some("prometheus") => {
            let fields = Fields::new(path, value, &["type", "url", "query", "target"])?;
            let url = fields.required("url", fields.text("url")?)?.to_owned();
            let query = fields.required("query", fields.text("query")?)?.to_owned();
            let target = fields.required("target", fields.millionths("target")?)?;
            Ok(MetricTarget::Prometheus { url, query, target })
        }
        _ => Err(invalid(join(path, "type"), "must be cpu, memory or prometheus")),
    }
}

fn parse_rules(
    path: &str,
    value: Option<&Value>,
    defaults: ScalingRules,
) -> Result<ScalingRules, ApiError> {
    let Some(value) = value else { return Ok(defaults) };
    let fields =
        Fields::new(path, value, &["stabilizationWindowSeconds", "selectPolicy", "policies"])?;
    let stabilization_window =
        fields.seconds("stabilizationWindowSeconds")?.unwrap_or(defaults.stabilization_window);
    let select = match fields.text("selectPolicy")? {
        None => defaults.select,
        Some("Max") => SelectPolicy::Max,
        Some("Min") => SelectPolicy::Min,
        Some("Disabled") => SelectPolicy::Disabled,
        Some(_) => {
            return Err(invalid(fields.field("selectPolicy"), "must be Max, Min or Disabled"))
        }
    };
    let policies = match fields.get("policies") {
        None => defaults.policies,
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(index, item)| {
                let path = format!("{path}.policies[{index}]");
                let fields = Fields::new(&path, item, &["type", "value", "periodSeconds"])?;
                let kind = match fields.text("type")? {
                    Some("Pods") => RateKind::Pods,
                    Some("Percent") => RateKind::Percent,
                    _ => return Err(invalid(fields.field("type"), "must be Pods or Percent")),
                };
                let value = fields.required("value", fields.count("value")?)?;
                let period = fields.required("periodSeconds", fields.seconds("periodSeconds")?)?;
                Ok(RatePolicy { kind, value, period })
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(invalid(fields.field("policies"), "must be a list")),
    };
    Ok(ScalingRules { stabilization_window, policies, select })
}

pub(crate) fn render_policy(app_id: &AppId, policy: &AutoscalerPolicy) -> Value {
    json!({
        "appId": app_id.as_str(),
        "min": policy.min,
        "max": policy.max,
        "evaluationIntervalSeconds": policy.evaluation_interval.as_secs(),
        "metrics": policy.metrics.iter().map(render_metric).collect::<Vec<Value>>(),
        "tolerance": policy.tolerance.as_f64(),
        "scaleUp": render_rules(&policy.scale_up),
        "scaleDown": render_rules(&policy.scale_down),
    })
}

fn render_metric(metric: &MetricTarget) -> Value {
    match metric {
        MetricTarget::Cpu { target_utilization } => {
            json!({"type": "cpu", "targetUtilization": target_utilization.as_f64() * 100.0})
        }
        MetricTarget::Memory { target_utilization } => {
            json!({"type": "memory", "targetUtilization": target_utilization.as_f64() * 100.0})
        }
        MetricTarget::Prometheus { url, query, target } => {
            json!({"type": "prometheus", "url": url, "query": query, "target": target.as_f64()})
        }
    }
}

fn render_rate(rate: &RatePolicy) -> Value {
    json!({"type": rate.kind.as_str(), "value": rate.value, "periodSeconds": rate.period.as_secs()})
}

fn render_rules(rules: &ScalingRules) -> Value {
    json!({
        "stabilizationWindowSeconds": rules.stabilization_window.as_secs(),
        "selectPolicy": rules.select.as_str(),
        "policies": rules.policies.iter().map(render_rate).collect::<Vec<Value>>(),
    })
}

fn render_reading(reading: &MetricReading) -> Value {
    json!({
        "metric": reading.metric.as_str(),
        "value": reading.value.as_f64(),
        "target": reading.target.as_f64(),
        "ready": reading.ready,
        "notReady": reading.not_ready,
        "missing": reading.missing,
        "recommendation": reading.recommendation,
    })
}

fn render_limit(limit: &Limit) -> Value {
    match limit {
        Limit::None => json!({"type": "none"}),
        Limit::Stabilization { window } => {
            json!({"type": "stabilization", "windowSeconds": window.as_secs()})
        }
        Limit::Rate(rate) => json!({"type": "rate", "policy": render_rate(rate)}),
        Limit::Disabled => json!({"type": "disabled"}),
        Limit::Max => json!({"type": "max"}),
        Limit::Min => json!({"type": "min"}),
    }
}

/// A sentence saying why, for people; the fields beside it say the same for programs.
pub(crate) fn scaling_reason(scaling: &Scaling) -> String {
    let direction = if scaling.desired > scaling.current { "up" } else { "down" };
    let driver = scaling
        .inputs
        .iter()
        .max_by_key(|reading| reading.recommendation)
        .map(|reading| {
            format!(
                "{} at {:.3} against a target of {:.3} asked for {}",
                reading.metric.as_str(),
                reading.value.as_f64(),
                reading.target.as_f64(),
                reading.recommendation
            )
        })
        .unwrap_or_else(|| "no metric".to_owned());
    let limit = match &scaling.limited_by {
        Limit::None => String::new(),
        Limit::Stabilization { window } => {
            format!(
                "; held to {} by the {}s stabilization window",
                scaling.desired,
                window.as_secs()
            )
        }
        Limit::Rate(rate) => format!(
            "; held to {} by the {} {} per {}s policy",
            scaling.desired,
            rate.kind.as_str(),
            rate.value,
            rate.period.as_secs()
        ),
        Limit::Disabled => "; scaling this way is disabled".to_owned(),
        Limit::Max => format!("; clamped to max {}", scaling.desired),
        Limit::Min => format!("; brought up to min {}", scaling.desired),
    };
    format!("scale {direction} from {} to {}: {driver}{limit}", scaling.current, scaling.desired)
}

fn hold_reason(reason: &HoldReason) -> (&'static str, String) {
    match reason {
        HoldReason::DeploymentRunning { deployment_id } => (
            "deployment_running",
            format!("deployment {deployment_id} of the app runs; scaling would cancel it"),
        ),
        HoldReason::NoMetrics => ("no_metrics", "no ready instance reported a sample".to_owned()),
        HoldReason::WithinTolerance => {
            ("within_tolerance", "every metric is within tolerance of its target".to_owned())
        }
        HoldReason::Stabilized { window } => (
            "stabilized",
            format!("the {}s stabilization window holds the change back", window.as_secs()),
        ),
        HoldReason::RateLimited => {
            ("rate_limited", "the rate policies allow no change in this period".to_owned())
        }
        HoldReason::AtBound => ("at_bound", "the app is at the policy's bound".to_owned()),
        HoldReason::ScaledToZero => {
            ("scaled_to_zero", "the app was scaled to zero by hand".to_owned())
        }
    }
}

fn render_scaling(scaling: &Scaling) -> Value {
    json!({
        "action": if scaling.desired > scaling.current { "scale_up" } else { "scale_down" },
        "current": scaling.current,
        "recommended": scaling.recommended,
        "desired": scaling.desired,
        "limitedBy": render_limit(&scaling.limited_by),
        "inputs": scaling.inputs.iter().map(render_reading).collect::<Vec<Value>>(),
        "reason": scaling_reason(scaling),
    })
}

pub(crate) fn render_recorded(recorded: &RecordedScaling) -> Value {
    let mut value = render_scaling(&recorded.scaling);
    value["at"] = json!(recorded.at.to_rfc3339());
    value["deploymentId"] = json!(recorded.deployment_id.as_str());
    value
}

pub(crate) fn render_decision(decision: &Decision) -> Value {
    match decision {
        Decision::Scale(scaling) => render_scaling(scaling),
        Decision::Hold(hold) => {
            let (code, reason) = hold_reason(&hold.reason);
            json!({
                "action": "hold",
                "current": hold.current,
                "recommended": hold.recommended,
                "desired": hold.current,
                "hold": code,
                "inputs": hold.inputs.iter().map(render_reading).collect::<Vec<Value>>(),
                "reason": reason,
            })
        }
    }
}
