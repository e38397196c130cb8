//! Machine setup: the system packages the build needs and the Tansu binary.

use std::path::PathBuf;
use std::process::Command;

use crate::TANSU_VERSION;

/// Debian packages the workspace needs to build and test:
/// - `clang`, `libclang-dev`: the `rocksdb` crate generates its bindings with bindgen;
/// - `libssl-dev`, `pkg-config`: TLS for reqwest/sqlx through the system OpenSSL;
/// - `postgresql`: the binaries for a private cluster when no server answers;
/// - `chromium`, `chromium-driver`: the headless browser the console's test
///   drives over WebDriver (api/tests/console.rs).
pub const SYSTEM_PACKAGES: &[&str] = &[
    "clang",
    "libclang-dev",
    "libssl-dev",
    "pkg-config",
    "postgresql",
    "chromium",
    "chromium-driver",
];

fn is_installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).contains("install ok installed"))
        .unwrap_or(false)
}

/// Installs the missing packages with apt-get (as root), or explains what to run.
pub fn ensure_system_packages() -> anyhow::Result<()> {
    if Command::new("dpkg-query")
        .arg("--version")
        .output()
        .is_err()
    {
        tracing::warn!(
            "not a Debian-like system: make sure clang, libclang, OpenSSL headers, PostgreSQL, Chromium and chromedriver are installed"
        );
        return Ok(());
    }
    let missing: Vec<&str> = SYSTEM_PACKAGES
        .iter()
        .copied()
        .filter(|p| !is_installed(p))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !nix::unistd::Uid::effective().is_root() {
        anyhow::bail!(
            "missing system packages {missing:?}; install them with: sudo apt-get install -y {}",
            missing.join(" ")
        );
    }
    tracing::info!(packages = ?missing, "installing system packages with apt-get");
    let install = |update_first: bool| -> anyhow::Result<bool> {
        if update_first {
            let _ = Command::new("apt-get").args(["update", "-q"]).status();
        }
        Ok(Command::new("apt-get")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()?
            .success())
    };
    if !install(false)? && !install(true)? {
        anyhow::bail!("apt-get could not install {missing:?}");
    }
    Ok(())
}

/// The `tansu` binary to run: `TANSU_BIN` if set, else Cargo's bin directory.
pub fn tansu_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("TANSU_BIN") {
        return PathBuf::from(path);
    }
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .unwrap_or_else(|| PathBuf::from("/root/.cargo"));
    cargo_home.join("bin").join("tansu")
}

fn installed_tansu_version() -> Option<String> {
    let out = Command::new(tansu_binary())
        .arg("--version")
        .output()
        .ok()?;
    Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Makes sure Tansu `TANSU_VERSION` is installed with the storage engines we use
/// (`dynostore` for `memory://`, `libsql` for `sqlite://`). The first build takes
/// about 11 minutes on 2 cores; after that the binary in `~/.cargo/bin` is reused.
pub fn ensure_tansu_installed() -> anyhow::Result<PathBuf> {
    let binary = tansu_binary();
    if let Some(version) = installed_tansu_version() {
        if version.contains(TANSU_VERSION) {
            return Ok(binary);
        }
        tracing::warn!(found = %version, wanted = TANSU_VERSION, "replacing the installed Tansu");
    }
    tracing::info!(
        version = TANSU_VERSION,
        "installing the Tansu broker with cargo install (about 11 minutes the first time; cached in ~/.cargo/bin afterwards)"
    );
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "install",
            "tansu",
            "--locked",
            "--version",
            TANSU_VERSION,
            "--features",
            "dynostore,libsql",
        ])
        .status()
        .map_err(|e| anyhow::anyhow!("cannot run cargo install: {e}"))?;
    if !status.success() {
        anyhow::bail!("cargo install tansu {TANSU_VERSION} failed ({status})");
    }
    match installed_tansu_version() {
        Some(v) if v.contains(TANSU_VERSION) => Ok(binary),
        other => anyhow::bail!(
            "tansu was installed but `{} --version` says {other:?}",
            binary.display()
        ),
    }
}
