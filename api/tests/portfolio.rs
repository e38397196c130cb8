//! `GET /v1/metering-points/{gsrn}/portfolio` against a real PostgreSQL whose read model was
//! written by the portfolio's own projection (`read_model::project`) of events the pure
//! `decide` made: a move-in requested, confirmed and in effect, then an end of supply
//! requested and cancelled. The answer is the supply period, the processes (status, the
//! cancellation's reason) and the timeline exactly, and the console's metering point page
//! shows the periods and processes; every
//! role reads it, nobody without a token; a bad GSRN is 400 and an unknown one 404, as
//! problem details.

mod support;

use afregning_portfolio::{
    Command, CommandMeta, CustomerKey, CustomerRef, Gln, MeteringPoint, ProcessDetails, ProcessId,
    ProcessKind, decide, read_model,
};
use chrono::{NaiveDate, TimeZone, Utc};
use serde_json::{Value, json};
use support::{Harness, problem, token};

const US: &str = "5790002000000";
// Seeded with master data by the harness, so the console shows its page.
const GSRN: &str = "571313180400000001";

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 3, d).expect("a day")
}

fn details(id: &str, kind: ProcessKind, effective: NaiveDate, customer: bool) -> ProcessDetails {
    ProcessDetails {
        process: ProcessId(id.into()),
        kind,
        supplier: Gln::parse(US).expect("gln"),
        effective,
        customer: customer.then(|| CustomerRef {
            key: CustomerKey("customer-7".into()),
            personal: None,
        }),
        corrects: None,
        balance_responsible: None,
        notified_reason: None,
    }
}

/// The events of the scenario, projected as the projector does.
async fn seed(pool: &sqlx::PgPool) -> anyhow::Result<()> {
    let gsrn = afregning_cim::Gsrn::parse(GSRN).expect("gsrn");
    let mut state = MeteringPoint::new(gsrn, Gln::parse(US).expect("gln"));
    let steps = [
        (
            3,
            Command::Request(details("move-in-1", ProcessKind::MoveIn, day(10), true)),
        ),
        (
            3,
            Command::Accept {
                process: ProcessId("move-in-1".into()),
                datahub_ref: Some("bp-1".into()),
            },
        ),
        (
            10,
            Command::TakeEffect {
                process: ProcessId("move-in-1".into()),
                disconnected_on: None,
            },
        ),
        (
            11,
            Command::Request(details("end-1", ProcessKind::EndOfSupply, day(25), false)),
        ),
        (
            12,
            Command::Cancel {
                process: ProcessId("end-1".into()),
            },
        ),
    ];
    for (on, command) in steps {
        let meta = CommandMeta {
            at: Utc.with_ymd_and_hms(2026, 3, on, 9, 0, 0).unwrap(),
            actor: "operator-1".into(),
            why: "api test".into(),
            message_id: None,
        };
        let event = decide(&state, &meta, &command).map_err(|r| anyhow::anyhow!("{r}"))?;
        state = state.apply(&event);
        assert!(read_model::project(pool, &state, &event).await?);
    }
    Ok(())
}

fn entry(sequence: i64, process: &str, change: &str, on: u32, status: &str) -> Value {
    json!({
        "sequence": sequence, "process_id": process, "change": change,
        "recorded_at": format!("2026-03-{on:02}T09:00:00Z"), "actor": "operator-1",
        "why": "api test", "status_after": status,
    })
}

#[tokio::test]
async fn a_metering_points_portfolio_is_its_periods_and_timeline() -> anyhow::Result<()> {
    let h = Harness::start("api_portfolio").await?;
    seed(&h.pool).await?;
    let path = format!("/v1/metering-points/{GSRN}/portfolio");

    let refused = problem(h.get(&path, None).await, 401).await;
    assert_eq!(refused["code"], "unauthorized");
    let mut answers = Vec::new();
    for role in ["operator", "backoffice", "billing", "readonly"] {
        let response = h.get(&path, Some(&token(role))).await;
        assert_eq!(response.status().as_u16(), 200, "{role}");
        answers.push(response.json::<Value>().await?);
    }
    let expected = json!({
        "gsrn": GSRN,
        "periods": [{
            "valid_from": "2026-03-10", "valid_to": null, "customer_key": "customer-7",
            "started_by": "move-in-1", "retired_by": null,
        }],
        "processes": [
            {
                "process_id": "move-in-1", "kind": "move_in", "brs": "BRS-009",
                "effective": "2026-03-10", "took_effect_on": "2026-03-10",
                // in effect, DataHub's customer data (RSM-028) still outstanding
                "status": "effective", "reasons": [], "customer_key": "customer-7",
                "corrects": null, "datahub_ref": "bp-1", "requested_by_us": true,
            },
            {
                "process_id": "end-1", "kind": "end_of_supply", "brs": "BRS-002",
                "effective": "2026-03-25", "took_effect_on": null, "status": "cancelled",
                "reasons": [{ "code": "A01", "text": "cancelled by the supplier: api test" }],
                "customer_key": null, "corrects": null, "datahub_ref": null,
                "requested_by_us": true,
            },
        ],
        "timeline": [
            entry(1, "move-in-1", "request_sent", 3, "sent"),
            entry(2, "move-in-1", "accepted", 3, "accepted"),
            entry(3, "move-in-1", "took_effect", 10, "effective"),
            entry(4, "end-1", "request_sent", 11, "sent"),
            entry(5, "end-1", "cancelled", 12, "cancelled"),
        ],
    });
    for answer in answers {
        assert_eq!(answer, expected);
    }

    let bad = problem(
        h.get(
            "/v1/metering-points/5713/portfolio",
            Some(&token("readonly")),
        )
        .await,
        400,
    )
    .await;
    assert!(
        bad["detail"].as_str().unwrap_or_default().contains("5713"),
        "{bad}"
    );
    let unknown = problem(
        h.get(
            "/v1/metering-points/571313180400000028/portfolio",
            Some(&token("readonly")),
        )
        .await,
        404,
    )
    .await;
    assert_eq!(unknown["status"], 404);

    // The console's metering point page shows the same, for every role; one without our
    // processes says so.
    let console = |gsrn: &str| {
        h.http
            .get(format!("{}/console/metering-points/{gsrn}", h.base))
            .header("cookie", format!("afregning_token={}", token("readonly")))
            .send()
    };
    let page = console(GSRN).await?.text().await?;
    let table = |id: &str| {
        page.split(&format!("id=\"{id}\""))
            .nth(1)
            .and_then(|t| t.split("</table>").next())
            .unwrap_or_default()
            .to_string()
    };
    assert!(
        table("supply-periods").contains(
            "<tr><td>2026-03-10</td><td></td><td>customer-7</td><td>move-in-1</td><td></td></tr>"
        ),
        "{page}"
    );
    let processes = table("processes");
    assert!(
        processes.contains(
            "<tr><td>move-in-1</td><td>BRS-009 move_in</td><td>2026-03-10</td><td>effective</td>\
             <td>2026-03-10</td><td></td></tr>"
        ) && processes.contains(
            "<tr><td>end-1</td><td>BRS-002 end_of_supply</td><td>2026-03-25</td><td>cancelled</td>\
             <td></td><td>A01 cancelled by the supplier: api test</td></tr>"
        ),
        "{processes}"
    );
    let other = console("571313180400000002").await?.text().await?;
    assert!(other.contains("id=\"no-portfolio\""), "{other}");
    h.stop().await
}
