//! The console in a real headless browser: Debian's Chromium driven over
//! WebDriver (chromedriver from `chromium-driver`, installed by
//! `cargo xtask setup`), against the API on a seeded PostgreSQL schema.
//! Signs in by pasting a token, searches, opens the seeded metering point and
//! reads its chart's bars (a month by day, the DST day by quarter-hour) and
//! statement lines, resolves a dead letter through the form, and looks at the
//! lag page. Screenshots go to `target/console-*.png`.

mod support;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{ClientBuilder, Locator};
use serde_json::json;
use support::{GSRN, Harness, token};

/// A chromedriver child on a free port, killed on drop.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn chromedriver() -> PathBuf {
    ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("chromedriver (Debian's chromium-driver; `cargo xtask setup` installs it)")
}

async fn start_driver() -> Driver {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let child = Command::new(chromedriver())
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let url = format!("http://127.0.0.1:{port}");
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Driver { child, url }
}

fn screenshot_path(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    std::fs::create_dir_all(&target).expect("the target directory");
    target.join(format!("console-{name}.png"))
}

#[tokio::test]
async fn the_console_renders_charts_and_resolves_dead_letters_in_chromium() -> anyhow::Result<()> {
    let h = Harness::start("api_console").await?;
    let driver = start_driver().await;
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({"args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                        "--disable-dev-shm-usage", "--window-size=1280,1400"]}),
    );
    let browser = ClientBuilder::native()
        .capabilities(caps)
        .connect(&driver.url)
        .await?;
    let result = drive(&browser, &h).await;
    let _ = browser.close().await;
    drop(driver);
    result?;
    h.stop().await
}

async fn drive(browser: &fantoccini::Client, h: &Harness) -> anyhow::Result<()> {
    let base = &h.base;

    // Without a token a page sends the browser to the sign-in page.
    browser
        .goto(&format!("{base}/console/metering-points"))
        .await?;
    assert_eq!(browser.current_url().await?.path(), "/console");

    // Paste an operator token.
    browser
        .find(Locator::Id("token"))
        .await?
        .send_keys(&token("operator"))
        .await?;
    browser
        .find(Locator::Css("#login button"))
        .await?
        .click()
        .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        browser.current_url().await?.path(),
        "/console/metering-points"
    );
    let rows = browser
        .find_all(Locator::Css("#metering-points tr"))
        .await?;
    assert_eq!(rows.len(), 1 + 4, "a header and the four seeded points");

    // Search by the GSRN's start, then open it.
    browser
        .goto(&format!(
            "{base}/console/metering-points?q=5713131804000123"
        ))
        .await?;
    browser.find(Locator::LinkText(GSRN)).await?.click().await?;
    assert_eq!(
        browser.current_url().await?.path(),
        format!("/console/metering-points/{GSRN}")
    );
    // The default month is the latest with data: March 2026, 30 days with bars.
    let bars = browser
        .find_all(Locator::Css("#consumption-chart rect.bar"))
        .await?;
    assert_eq!(
        bars.len(),
        30,
        "one bar per day with data (the 15th has none)"
    );
    let api: serde_json::Value = h
        .get(
            &format!(
                "/v1/metering-points/{GSRN}/metering-data?from=2026-03-01&to=2026-04-01&aggregate=day"
            ),
            Some(&token("readonly")),
        )
        .await
        .json()
        .await?;
    let chart = browser.find(Locator::Id("consumption-chart")).await?;
    assert_eq!(
        chart.attr("data-total-kwh").await?.as_deref(),
        api["total_kwh"].as_str(),
        "the chart shows the API's total"
    );
    let first_bar = bars[0].attr("data-kwh").await?.unwrap_or_default();
    assert_eq!(
        first_bar,
        api["buckets"][0]["quantity_kwh"].as_str().unwrap()
    );
    let lines = browser
        .find_all(Locator::Css("#statement-lines tr"))
        .await?;
    assert_eq!(lines.len(), 1 + 2, "a header and two lines of version 2");
    let versions = browser.find_all(Locator::Css("#versions tr")).await?;
    assert_eq!(versions.len(), 1 + 2);
    let page = browser.source().await?;
    assert!(
        page.contains("5790000610099 / D03 / NT-C"),
        "the tariff's owner and code"
    );
    std::fs::write(
        screenshot_path("metering-point"),
        browser.screenshot().await?,
    )?;

    // The DST day by quarter-hour: 92 bars.
    browser
        .goto(&format!(
            "{base}/console/metering-points/{GSRN}?day=2026-03-29"
        ))
        .await?;
    let quarter_hours = browser
        .find_all(Locator::Css("#consumption-chart rect.bar"))
        .await?;
    assert_eq!(quarter_hours.len(), 92);
    std::fs::write(screenshot_path("dst-day"), browser.screenshot().await?)?;

    // Resolve the first dead letter through its form.
    browser
        .goto(&format!("{base}/console/dead-letters"))
        .await?;
    let forms = browser.find_all(Locator::Css("form.resolve")).await?;
    assert_eq!(forms.len(), 2);
    let form = &forms[0];
    form.find(Locator::Css("input[name=note]"))
        .await?
        .send_keys("fixed in the browser test")
        .await?;
    form.find(Locator::Css("button")).await?.click().await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(browser.current_url().await?.path(), "/console/dead-letters");
    let forms = browser.find_all(Locator::Css("form.resolve")).await?;
    assert_eq!(forms.len(), 1, "one left after resolving");
    std::fs::write(screenshot_path("dead-letters"), browser.screenshot().await?)?;
    let (by, note, audited): (String, String, i64) = sqlx::query_as(
        "SELECT d.resolved_by, d.resolution_note, \
                (SELECT count(*) FROM api_audit a WHERE a.action = 'dead_letter.resolve' \
                   AND a.actor = d.resolved_by) \
         FROM dead_letter d WHERE d.resolved",
    )
    .fetch_one(&h.pool)
    .await?;
    assert_eq!(by, "operator@example.test");
    assert_eq!(note, "fixed in the browser test");
    assert_eq!(audited, 1);

    // The pipeline's lag.
    browser.goto(&format!("{base}/console/lag")).await?;
    let lag = browser.find(Locator::Id("lag")).await?.text().await?;
    assert!(
        lag.contains("sink-postgres") && lag.contains("1234"),
        "{lag}"
    );

    // A read-only token sees the queue but may not resolve: 403 page.
    browser
        .execute(
            "document.cookie = 'afregning_token=' + arguments[0] + '; path=/console; SameSite=Strict';",
            vec![json!(token("readonly"))],
        )
        .await?;
    browser
        .goto(&format!("{base}/console/dead-letters"))
        .await?;
    let form = browser.find(Locator::Css("form.resolve")).await?;
    form.find(Locator::Css("input[name=note]"))
        .await?
        .send_keys("not allowed")
        .await?;
    form.find(Locator::Css("button")).await?.click().await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let refused = browser.source().await?;
    assert!(refused.contains("resolve_dead_letters"), "{refused}");
    let open: i64 = sqlx::query_scalar("SELECT count(*) FROM dead_letter WHERE NOT resolved")
        .fetch_one(&h.pool)
        .await?;
    assert_eq!(open, 1);
    Ok(())
}
