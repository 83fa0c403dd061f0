use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    cohorts::cli::run(cohorts::cli::Cli::parse()).await
}
