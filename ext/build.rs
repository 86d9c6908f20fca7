//! Build script of the `chat` extension.
//!
//! 1. Refuses a PHP this extension does not support, with a message that says what to do.
//!    ext-php-rs's own build script runs first and refuses PHP < 8.1 itself; what it lets through
//!    but we do not support is a PHP newer than the last one tested (its table already lists
//!    API numbers of unreleased PHP versions), and a `php` CLI that is not the PHP `php-config`
//!    describes: ext-php-rs reads the Zend API number from `php -i` but the headers from
//!    `php-config --includes`, so a mismatch builds a module that PHP refuses to load, or that
//!    crashes.
//! 2. Records build information that `php --ri chat` shows (see `src/info.rs`).
//!
//! The supported range is also checked by `make build` before cargo runs (`ext/ext.mk`,
//! `CHAT_PHP_MIN`/`CHAT_PHP_MAX`), where it can fail before ext-php-rs's less specific
//! message; keep the two in step.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Oldest and newest PHP (major, minor) supported: ext-php-rs 0.16 needs 8.1 (its `enum`
/// feature); 8.5 is the newest release ext-php-rs 0.16 was released against.
const MIN: (u32, u32) = (8, 1);
const MAX: (u32, u32) = (8, 5);

/// Lets a developer try an untested PHP anyway (`CHAT_ALLOW_UNSUPPORTED_PHP=1`).
const ALLOW: &str = "CHAT_ALLOW_UNSUPPORTED_PHP";

fn main() {
    for var in ["PHP", "PHP_CONFIG", "PATH", ALLOW] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    println!("cargo:rerun-if-changed=build.rs");

    let php = check_php();
    println!("cargo:rustc-env=CHAT_BUILD_PHP={php}");
    println!("cargo:rustc-env=CHAT_BUILD_GIT={}", git_describe());
    println!("cargo:rustc-env=CHAT_BUILD_RUSTC={}", rustc_version());
    println!(
        "cargo:rustc-env=CHAT_BUILD_PROFILE={}",
        std::env::var("PROFILE").unwrap_or_else(|_| "unknown".into())
    );
    println!(
        "cargo:rustc-env=CHAT_BUILD_TARGET={}",
        std::env::var("TARGET").unwrap_or_else(|_| "unknown".into())
    );
}

/// Checks the PHP being built against; returns e.g. `"8.2.36 NTS"` for the build info.
fn check_php() -> String {
    let php_config = env_path("PHP_CONFIG", "php-config");
    let php = env_path("PHP", "php");
    let config_version = run(&php_config, &["--version"]).unwrap_or_else(|e| {
        fail(&format!(
            "cannot run {} --version ({e}). Install the PHP development files (Debian: \
             apt-get install php-dev) or set PHP_CONFIG to the php-config of the PHP to build for.",
            php_config.display()
        ))
    });
    let cli = run(
        &php,
        &[
            "-n",
            "-r",
            "echo PHP_VERSION, ' ', PHP_ZTS ? 'ZTS' : 'NTS', PHP_DEBUG ? ' debug' : '';",
        ],
    )
    .unwrap_or_else(|e| {
        fail(&format!(
            "cannot run {} ({e}). Install the PHP CLI (Debian: apt-get install php-cli) or set \
             PHP to the php binary of the PHP to build for.",
            php.display()
        ))
    });
    let cli_version = cli.split(' ').next().unwrap_or_default().to_owned();

    let Some(config_mm) = major_minor(&config_version) else {
        fail(&format!(
            "{} --version printed {config_version:?}, which is not a PHP version",
            php_config.display()
        ))
    };
    if major_minor(&cli_version) != Some(config_mm) {
        fail(&format!(
            "{} is PHP {cli_version} but {} is PHP {config_version}: both must be the same PHP. \
             Set PHP and PHP_CONFIG to the php and php-config of the PHP to build for \
             (Debian: /usr/bin/php8.x and /usr/bin/php-config8.x).",
            php.display(),
            php_config.display()
        ));
    }
    if (config_mm < MIN || config_mm > MAX) && std::env::var_os(ALLOW).is_none() {
        fail(&format!(
            "PHP {config_version} is not supported: the chat extension supports PHP {}.{} to {}.{} \
             (ext-php-rs 0.16). {} Set PHP_CONFIG and PHP to a supported PHP's php-config and php, \
             or {ALLOW}=1 to try anyway.",
            MIN.0,
            MIN.1,
            MAX.0,
            MAX.1,
            if config_mm < MIN {
                "Upgrade PHP."
            } else {
                "This PHP is newer than any the extension was tested with."
            }
        ));
    }
    cli
}

fn major_minor(version: &str) -> Option<(u32, u32)> {
    let mut parts = version.trim().split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts
        .next()?
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .ok()?;
    Some((major, minor))
}

fn env_path(var: &str, default: &str) -> PathBuf {
    std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(default))
}

fn run(program: &Path, args: &[&str]) -> Result<String, String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "exit status {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn fail(message: &str) -> ! {
    // cargo shows a build script's stderr when it fails; `cargo:warning` lines would be
    // prefixed and wrapped.
    eprintln!("\nchat extension: {message}\n");
    std::process::exit(1);
}

/// `git describe` of the source tree, or `"unknown"` outside a git checkout (a crate tarball).
///
/// Not `--dirty`: telling a dirty tree apart would mean re-running this script, and
/// recompiling the extension, on every change to the git index.
fn git_describe() -> String {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    let git = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(&manifest)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    let Some(git_dir) = git(&["rev-parse", "--absolute-git-dir"]) else {
        return "unknown".into();
    };
    // Re-run when HEAD moves: a checkout changes HEAD, a commit changes the branch's ref.
    // Only existing files: cargo re-runs a script every build for a missing one.
    let git_dir = PathBuf::from(git_dir);
    let branch_ref = git(&["symbolic-ref", "-q", "HEAD"]);
    let watched = [Some("HEAD"), Some("packed-refs"), branch_ref.as_deref()];
    for path in watched.into_iter().flatten().map(|p| git_dir.join(p)) {
        if path.exists() {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
    git(&["describe", "--tags", "--always"]).unwrap_or_else(|| "unknown".into())
}

fn rustc_version() -> String {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    run(Path::new(&rustc), &["--version"]).unwrap_or_else(|_| "unknown".into())
}
