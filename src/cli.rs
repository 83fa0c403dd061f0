//! The `cohorts` command line.

use crate::db::prepare_database;
use crate::settings::Settings;
use crate::startup::Application;
use anyhow::Context;
use clap::{Parser, Subcommand};
use std::io::Read;

#[derive(Parser)]
#[command(
    name = "cohorts",
    version,
    about = "Group integration for psychedelic-assisted therapy programs",
    long_about = "Forms integration cohorts from patients dosed within a similar window, \
                  staffs them with facilitators, records attendance and sends every email \
                  at the right time.\n\nConfiguration: config/default.toml, then \
                  config/$COHORTS_ENV.toml, then COHORTS_* environment variables \
                  (see README.md)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the HTTP server (applies pending migrations first).
    Serve,
    /// Run only the mail worker (plans reminders, sends the outbox), no HTTP server.
    Worker,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage user accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Form cohorts from a program's waitlist and print the plan.
    Form {
        /// The program whose waitlist to form.
        #[arg(long, value_name = "ID")]
        program: i64,
        /// Show the plan without changing anything.
        #[arg(long)]
        dry_run: bool,
    },
    /// Fill an empty database with a demo program and print demo sign-ins.
    SeedDemo {
        /// Also build a benchmark program: 1,000 cohorts × 12 sessions × 10 members.
        #[arg(long)]
        large: bool,
    },
}

#[derive(Subcommand)]
pub enum UserCommand {
    /// Create a user; the password is read from standard input.
    Add {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        /// admin, program_lead or facilitator
        #[arg(long)]
        role: String,
        /// A program the user may access (repeat for several).
        #[arg(long = "program", value_name = "ID")]
        programs: Vec<i64>,
        /// The facilitator record a facilitator user acts as.
        #[arg(long = "facilitator", value_name = "ID")]
        facilitator: Option<i64>,
        /// Read the password from standard input (required, so it never lands in shell history).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    crate::telemetry::init_tracing();
    let settings = Settings::load()?;
    match cli.command {
        Command::Serve => serve(settings).await,
        Command::Worker => crate::worker::runner::run_standalone(settings).await,
        Command::Migrate => {
            let pool = prepare_database(&settings)?;
            drop(pool);
            println!("migrations applied");
            Ok(())
        }
        Command::Form { program, dry_run } => form(&settings, program, dry_run),
        Command::SeedDemo { large } => seed_demo(&settings, large),
        Command::User(UserCommand::Add {
            email,
            name,
            role,
            programs,
            facilitator,
            password_stdin: _,
        }) => {
            let mut password = String::new();
            std::io::stdin()
                .read_to_string(&mut password)
                .context("reading the password from standard input")?;
            let password = password.trim_end_matches(['\r', '\n']).to_string();
            let request = crate::service::users::NewUserRequest {
                email,
                name,
                role,
                password,
                program_ids: programs,
                facilitator_id: facilitator,
            };
            let user = crate::service::users::ValidUser::try_from(request).map_err(describe)?;
            let hash = crate::service::auth::hash_password(&user.password)?;
            let pool = prepare_database(&settings)?;
            let mut conn = pool.get()?;
            let view = crate::service::users::create_user(&mut conn, None, &user, &hash)
                .map_err(describe)?;
            println!(
                "created user {} ({}) with id {}",
                view.email, view.role, view.id
            );
            Ok(())
        }
    }
}

fn form(settings: &Settings, program_id: i64, dry_run: bool) -> anyhow::Result<()> {
    use crate::service::formation;
    let pool = prepare_database(settings)?;
    let mut conn = pool.get()?;
    let program = crate::service::cohorts::program_context(
        &mut conn,
        crate::domain::ids::ProgramId(program_id),
    )
    .map_err(describe)?;
    let now = chrono::Utc::now();
    let outcome = if dry_run {
        formation::form(&mut conn, &program, now, formation::Mode::DryRun)
    } else {
        crate::db::write_transaction(&mut conn, |conn| {
            crate::db::models::cohort::lock_program(conn, program_id)?;
            formation::form(conn, &program, now, formation::Mode::Commit { actor: None })
        })
    }
    .map_err(describe)?;
    print!("{}", formation::render_table(&outcome, program.tz));
    Ok(())
}

fn seed_demo(settings: &Settings, large: bool) -> anyhow::Result<()> {
    let pool = prepare_database(settings)?;
    let mut conn = pool.get()?;
    let report = crate::seed::seed(&mut conn, large).map_err(|error| match error {
        crate::error::AppError::Internal(cause) => cause,
        other => describe(other),
    })?;
    println!("Demo program {} is ready.", report.program_id);
    if let Some(id) = report.large_program_id {
        println!("Benchmark program {id} is ready.");
    }
    println!("{} attendance records written.", report.attendance_records);
    println!("Sign in at {}/staff/login with:", settings.public_url);
    for account in &report.accounts {
        println!(
            "  {:<13} {}  password: {}",
            account.role, account.email, account.password
        );
    }
    Ok(())
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let public_url = settings.public_url.clone();
    let app = Application::build(settings).await?;
    if let Some((email, password)) = &app.initial_admin {
        // Printed to the console once, not logged: it is a credential.
        println!("First start: created an admin account.");
        println!("  email:    {email}");
        println!("  password: {password}");
        println!("Log in with POST {public_url}/api/v1/auth/login and keep this password safe; it is not shown again.");
    }
    tracing::info!(port = app.port(), "listening");
    app.run_until_stopped().await?;
    tracing::info!("stopped");
    Ok(())
}

/// Command-line errors read like the API's: which field, and why.
fn describe(error: crate::error::AppError) -> anyhow::Error {
    match error {
        crate::error::AppError::Validation(fields) => {
            let lines: Vec<String> = fields
                .iter()
                .map(|(field, message)| format!("  {field}: {message}"))
                .collect();
            anyhow::anyhow!("invalid input:\n{}", lines.join("\n"))
        }
        other => anyhow::anyhow!("{other}"),
    }
}
