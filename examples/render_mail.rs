//! Writes the HTML part of every email kind, rendered with the preview's sample data, to
//! `<dir>/<kind>.html` (and `<kind>-staff.html` for the notices staff get too), for the
//! Nu HTML validator in CI (.ci/run) and for a look in a browser.
//!
//! Usage: cargo run --example render_mail -- [DIR, default target/mail-html]

use cohorts::email::templates::sample_context;
use cohorts::email::{Templates, KINDS};
use std::path::PathBuf;

fn main() -> anyhow::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target/mail-html"));
    std::fs::create_dir_all(&dir)?;
    let templates = Templates::load(None)?;
    let public_url = "https://cohorts.example.org";
    for kind in KINDS {
        let context = sample_context(kind, public_url);
        let rendered = templates.render(kind, &context)?;
        std::fs::write(dir.join(format!("{kind}.html")), rendered.html)?;
        if matches!(kind, "session_changed" | "session_cancelled") {
            let mut staff = context.clone();
            staff["cohort_url"] = format!("{public_url}/staff/cohorts/1").into();
            staff["unsubscribe_url"] = serde_json::Value::Null;
            let rendered = templates.render(kind, &staff)?;
            std::fs::write(dir.join(format!("{kind}-staff.html")), rendered.html)?;
        }
    }
    println!("{}", dir.display());
    Ok(())
}
