//! Replay from the API (issue 14's `afregning replay`, decision 0090):
//! re-submitting resolved dead letters, starting a recalculation, and reading
//! the runs. The work is `afregning_processors::replay` (`plan`, `resubmit`,
//! `runs`), the same functions the CLI calls, so a run reads the same
//! whichever started it.
//!
//! A change writes its run row and its audit row in one transaction, which
//! commits before anything goes to the broker: the audit log then also holds
//! the attempts the broker refused, whose runs end `failed` with the error.

use std::time::Duration;

use afregning_processors::replay::client;
use afregning_processors::replay::dead_letters::DeadLetterId;
use afregning_processors::replay::plan::{self, StartSpec};
use afregning_processors::replay::resubmit::{self, Resubmitted, Selection};
use afregning_processors::replay::runs::{self, NewRun, RunError, RunRecord};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::audit::{self, Change, RequestId};
use crate::auth::Caller;
use crate::broker::Broker;
use crate::{ApiError, AppState, limits};

/// How long the API follows a run it started before leaving it `interrupted`
/// (also when the API stops first; the processors go on, and `afregning
/// replay resume` follows it to the end).
pub const FOLLOW_TIMEOUT: Duration = Duration::from_secs(3600);

/// At most this many dead letters in one re-submission.
pub const MAX_DEAD_LETTERS: usize = 1000;

impl From<RunError> for ApiError {
    fn from(error: RunError) -> Self {
        match error {
            RunError::NotFound(m) => ApiError::NotFound(m),
            RunError::Refused(m) => ApiError::Conflict(m),
            RunError::Invalid(m) => ApiError::Unprocessable(m),
            RunError::Database(e) => ApiError::Database(e),
            RunError::Broker(m) => ApiError::Unavailable(m),
            RunError::Stored(e) => ApiError::Unavailable(format!("a stored run did not read: {e}")),
        }
    }
}

fn broker(state: &AppState) -> Result<&Broker, ApiError> {
    state.broker.as_ref().ok_or_else(|| {
        ApiError::Unavailable("the API has no broker configured (--bootstrap-servers)".into())
    })
}

/// A dead letter by its source record, as the listing names it.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct DeadLetterRef {
    /// Topic of the record that failed.
    pub source_topic: String,
    /// Its partition.
    pub source_partition: i32,
    /// Its offset.
    pub source_offset: i64,
}

/// Body of `POST /v1/dead-letters/resubmit`: which resolved dead letters go back.
#[derive(Debug, Deserialize, ToSchema)]
pub struct Resubmit {
    /// These dead letters (each must exist and be resolved).
    #[serde(default)]
    pub dead_letters: Vec<DeadLetterRef>,
    /// And every resolved one whose reason contains this text.
    pub reason_contains: Option<String>,
    /// Also those an earlier run re-submitted (else named ones are refused with 409).
    #[serde(default)]
    pub again: bool,
    /// Record what would go; produce nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Why (required): the run's reason and the audit row's.
    pub reason: Option<String>,
}

/// The answer to a re-submission.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResubmitRun {
    /// The replay run that records it (kind `dead-letters`).
    pub run_id: String,
    /// The audit row written with the run.
    pub audit_id: i64,
    /// Each dead letter: where it went (or would go) again.
    pub resubmitted: Vec<Resubmitted>,
}

/// `POST /v1/dead-letters/resubmit`: produces resolved dead letters again to
/// the topic and partition they came from (the source record with its headers
/// where it is still there, else the dead letter's copy), recorded as a replay
/// run. 404 for a dead letter that does not exist, 409 for one not resolved or
/// re-submitted before (without `again`), 422 when nothing is selected or the
/// reason is missing, 503 without a broker or when it fails (the run is then
/// recorded `failed`).
#[utoipa::path(post, path = "/v1/dead-letters/resubmit", tag = "operations", request_body = Resubmit,
    responses((status = 200, body = ResubmitRun), (status = 404, body = crate::error::Problem),
        (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem),
        (status = 503, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn resubmit(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(request_id): Extension<RequestId>,
    Json(body): Json<Resubmit>,
) -> Result<Json<ResubmitRun>, ApiError> {
    let reason = audit::reason(body.reason.as_deref())?;
    let reason_contains = body
        .reason_contains
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty());
    if body.dead_letters.is_empty() && reason_contains.is_none() {
        return Err(ApiError::Unprocessable(
            "name dead letters or give reason_contains".into(),
        ));
    }
    if body.dead_letters.len() > MAX_DEAD_LETTERS {
        return Err(ApiError::Unprocessable(format!(
            "at most {MAX_DEAD_LETTERS} dead letters at once"
        )));
    }
    let broker = broker(&state)?;
    let selection = Selection {
        ids: body
            .dead_letters
            .iter()
            .map(|d| DeadLetterId {
                topic: d.source_topic.clone(),
                partition: d.source_partition,
                offset: d.source_offset,
            })
            .collect(),
        reason_contains: reason_contains.map(str::to_string),
        again: body.again,
    };
    let run_id = runs::new_run_id();
    let mut tx = state.pool.begin().await?;
    let letters = resubmit::select(&mut tx, &selection).await?;
    if letters.is_empty() {
        return Err(ApiError::NotFound(
            "no resolved dead letter matches that was not re-submitted before".into(),
        ));
    }
    resubmit::record_start(
        &mut tx,
        &run_id,
        &caller.subject,
        &reason,
        &letters,
        body.dry_run,
    )
    .await?;
    let ids: Vec<String> = letters.iter().map(|l| l.id.to_string()).collect();
    let audit_id = audit::record(
        &mut tx,
        &Change {
            caller: &caller,
            request_id: &request_id,
            action: "dead_letter.resubmit",
            target: format!("replay_run:{run_id}"),
            reason: &reason,
            details: serde_json::json!({ "dead_letters": ids, "dry_run": body.dry_run }),
        },
    )
    .await?;
    tx.commit().await?;
    let mut conn = state.pool.acquire().await?;
    let resubmitted =
        resubmit::resubmit(&mut conn, broker.client(), &run_id, &letters, body.dry_run).await?;
    Ok(Json(ResubmitRun {
        run_id,
        audit_id,
        resubmitted,
    }))
}

/// Body of `POST /v1/replay-runs`: what to recalculate (as `afregning replay start`).
#[derive(Debug, Deserialize, ToSchema)]
pub struct StartRun {
    /// The processor whose inputs are re-read: validate, enrich, aggregate or settle.
    pub processor: String,
    /// Re-read every chosen partition of every input from this offset (or give `from_time`).
    pub from_offset: Option<i64>,
    /// Re-read from the first record at or after this time.
    pub from_time: Option<DateTime<Utc>>,
    /// End of the data period to recompute (exclusive; default no end).
    pub to_time: Option<DateTime<Utc>>,
    /// Start of the data period to recompute (default `from_time`).
    pub recompute_from: Option<DateTime<Utc>>,
    /// Only these grid areas' partitions (aggregate and settle).
    #[serde(default)]
    pub grid_areas: Vec<String>,
    /// Only these partitions (all when neither these nor grid areas are given).
    #[serde(default)]
    pub partitions: Vec<i32>,
    /// Compute the summary only: no positions moved, nothing written or published.
    #[serde(default)]
    pub dry_run: bool,
    /// Find time offsets by searching record timestamps, not asking the broker.
    #[serde(default)]
    pub search_offsets: bool,
    /// Why (required): the run's reason and the audit row's.
    pub reason: Option<String>,
}

/// The answer to starting a run.
#[derive(Debug, Serialize, ToSchema)]
pub struct StartedRun {
    /// The audit row written with the run.
    pub audit_id: i64,
    /// The run as recorded (`running`); `GET /v1/replay-runs/{run_id}` shows how it goes.
    pub run: RunRecord,
}

/// `POST /v1/replay-runs`: records a recalculation, writes its request for the
/// processor's tasks and answers 202 at once; the API follows the tasks'
/// reports in the background and records the outcome (state, reports, summary)
/// on the run. 422 for an unknown processor, partitions outside the topics,
/// grid areas for a processor not partitioned by them, not exactly one of
/// `from_offset` and `from_time`, or no reason; 503 without a broker or when
/// no processor instance runs under the deployment's prefix (the run is then
/// recorded `failed`).
#[utoipa::path(post, path = "/v1/replay-runs", tag = "operations", request_body = StartRun,
    responses((status = 202, body = StartedRun), (status = 422, body = crate::error::Problem),
        (status = 503, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn start(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(request_id): Extension<RequestId>,
    Json(body): Json<StartRun>,
) -> Result<(StatusCode, Json<StartedRun>), ApiError> {
    let reason = audit::reason(body.reason.as_deref())?;
    let broker = broker(&state)?;
    let spec = StartSpec {
        processor: body.processor.clone(),
        from_offset: body.from_offset,
        from_time: body.from_time,
        to_time: body.to_time,
        recompute_from: body.recompute_from,
        grid_areas: body.grid_areas.clone(),
        partitions: body.partitions.clone(),
        dry_run: body.dry_run,
        search_offsets: body.search_offsets,
    };
    // Refused before the broker is asked anything.
    plan::partitions_and_inputs(broker.catalogue(), &spec)?;
    let (request, sources) = plan::request(broker.client(), broker.catalogue(), &spec).await?;
    let mut tx = state.pool.begin().await?;
    runs::insert(
        &mut tx,
        &NewRun {
            request: &request,
            operator: &caller.subject,
            reason: &reason,
            grid_areas: &body.grid_areas,
            offset_sources: sources,
            from_time: body.from_time,
            to_time: body.to_time,
        },
    )
    .await?;
    let audit_id = audit::record(
        &mut tx,
        &Change {
            caller: &caller,
            request_id: &request_id,
            action: "replay.start",
            target: format!("replay_run:{}", request.run_id),
            reason: &reason,
            details: serde_json::json!({
                "processor": request.processor, "start": request.start, "end": request.end,
                "recompute_from": request.recompute_from, "recompute_to": request.recompute_to,
                "dry_run": request.dry_run,
            }),
        },
    )
    .await?;
    tx.commit().await?;
    let mut conn = state.pool.acquire().await?;
    plan::publish_recorded(&mut conn, broker.client(), broker.prefix(), &request).await?;
    let run = runs::show(&mut conn, &request.run_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("run {} vanished", request.run_id)))?;
    drop(conn);
    tracing::info!(run = %request.run_id, processor = %request.processor, dry_run = request.dry_run, actor = %caller.subject, "replay started");
    tokio::spawn(follow(state.pool.clone(), broker.clone(), request));
    Ok((StatusCode::ACCEPTED, Json(StartedRun { audit_id, run })))
}

/// Follows a started run to its end and records the outcome; logged, never
/// answered (the request that started it has long been answered).
async fn follow(
    pool: sqlx::PgPool,
    broker: Broker,
    request: afregning_processors::replay::ReplayRequest,
) {
    let run_id = request.run_id.clone();
    let followed = {
        let client = broker.client().clone();
        let prefix = broker.prefix().to_string();
        let stop = broker.stop_flag().clone();
        tokio::task::spawn_blocking(move || {
            let group = format!("{prefix}afregning.{}", request.processor);
            client::follow(
                &client,
                &prefix,
                &group,
                &request,
                &stop,
                FOLLOW_TIMEOUT,
                |_| {},
            )
        })
        .await
    };
    let followed = match followed {
        Ok(followed) => followed,
        Err(e) => Err(client::ClientError::Incomplete(format!(
            "the follower stopped: {e}"
        ))),
    };
    let recorded = match pool.acquire().await {
        Ok(mut conn) => runs::record_followed(&mut conn, &run_id, followed)
            .await
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    match recorded {
        Ok(outcome) => tracing::info!(run = %run_id, ?outcome, "replay run recorded"),
        Err(error) => tracing::error!(run = %run_id, %error, "replay run not recorded"),
    }
}

/// Filters of `GET /v1/replay-runs`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RunsQuery {
    /// At most this many runs, newest first (default 100, at most 1000).
    pub limit: Option<i64>,
}

/// `GET /v1/replay-runs`: recalculations and dead-letter re-submissions, newest first.
#[utoipa::path(get, path = "/v1/replay-runs", tag = "operations", params(RunsQuery),
    responses((status = 200, body = Vec<RunRecord>), (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Query(query): Query<RunsQuery>,
) -> Result<Json<Vec<RunRecord>>, ApiError> {
    let limit = limits::page_size(query.limit)?;
    let mut conn = state.pool.acquire().await?;
    Ok(Json(runs::list(&mut conn, limit).await?))
}

/// `GET /v1/replay-runs/{run_id}`: one run with its reports, summary and, for
/// dead letters, where each record went.
#[utoipa::path(get, path = "/v1/replay-runs/{run_id}", tag = "operations",
    params(("run_id" = String, Path, description = "the run's id")),
    responses((status = 200, body = RunRecord), (status = 404, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn show(
    State(state): State<AppState>,
    Path(run_id): Path<String>,
) -> Result<Json<RunRecord>, ApiError> {
    let mut conn = state.pool.acquire().await?;
    runs::show(&mut conn, &run_id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no replay run {run_id}")))
}
