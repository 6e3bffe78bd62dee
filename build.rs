//! Tells the browser tests whether this machine has Chromium and chromedriver.
//!
//! Without them, `cfg(portcullis_no_browser)` marks those tests `#[ignore]` with the reason, so
//! `cargo test` lists them as ignored, and counts them so in its summary, instead of passing
//! them without running anything. Where PORTCULLIS_REQUIRE_BROWSER is set (CI), they are never
//! ignored, and a missing browser fails them. Nothing else in the package uses the cfg.

use std::path::Path;

/// Where Debian's chromium and chromium-driver install them; the tests look in the same places
/// (tests/integration/common/webdriver.rs).
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVERS: [&str; 2] = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"];

fn main() {
    println!("cargo::rustc-check-cfg=cfg(portcullis_no_browser)");
    println!("cargo::rerun-if-env-changed=PORTCULLIS_REQUIRE_BROWSER");
    let chromedriver = CHROMEDRIVERS.into_iter().find(|p| Path::new(p).exists());
    match chromedriver {
        Some(chromedriver) if Path::new(CHROMIUM).exists() => {
            // Checked again if either goes away.
            println!("cargo::rerun-if-changed={chromedriver}");
            println!("cargo::rerun-if-changed={CHROMIUM}");
        }
        _ => {
            // Checked again when something is installed there. (Never name a missing path:
            // Cargo would then rerun this, and rebuild the crate, on every build.)
            println!("cargo::rerun-if-changed=/usr/bin");
            if std::env::var_os("PORTCULLIS_REQUIRE_BROWSER").is_none() {
                println!("cargo::rustc-cfg=portcullis_no_browser");
            }
        }
    }
}
