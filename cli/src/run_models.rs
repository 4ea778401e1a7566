//! `trellis2 models demo|random|check|fetch`.

use t2_cli::models::{check, fetch};

use crate::{ModelsAction, ModelsArgs};

pub(crate) async fn models(a: ModelsArgs) -> anyhow::Result<i32> {
    match a.action {
        ModelsAction::Demo { out } => {
            let o = out.clone();
            tokio::task::spawn_blocking(move || t2_cli::models::write_demo_set(&o)).await??;
            println!("demo models written to {}", out.display());
            Ok(0)
        }
        ModelsAction::Random {
            out,
            full_size,
            seed,
        } => {
            use t2_models::random::{ModelSetSize, write_model_set};
            let size = if full_size {
                ModelSetSize::full()
            } else {
                ModelSetSize::scaled()
            };
            let o = out.clone();
            let set =
                tokio::task::spawn_blocking(move || write_model_set(&o, seed, &size)).await??;
            for f in &set.files {
                println!("{:>14} bytes  {}", f.bytes, f.path.display());
            }
            println!(
                "random model set ({}) written to {}: {:.1} MB in {:.1} s",
                if full_size { "full size" } else { "scaled" },
                out.display(),
                set.bytes() as f64 / 1e6,
                set.seconds
            );
            Ok(0)
        }
        ModelsAction::Check { dir } => {
            let report = check::check(&dir);
            print!("{report}");
            Ok(if report.is_complete() { 0 } else { 1 })
        }
        ModelsAction::Fetch {
            out,
            token,
            endpoint,
            retries,
        } => {
            let _telemetry = t2_telemetry::init_from_env("trellis2")?;
            let report = fetch::fetch(fetch::FetchOptions {
                endpoint,
                token: token.filter(|t| !t.trim().is_empty()),
                out: out.clone(),
                retries,
                progress: true,
            })
            .await?;
            for (file, outcome) in &report.files {
                match outcome {
                    fetch::Outcome::Kept => println!("ok         {file}"),
                    fetch::Outcome::Downloaded {
                        bytes,
                        resumed_from: 0,
                    } => println!("downloaded {file} ({bytes} bytes, verified)"),
                    fetch::Outcome::Downloaded {
                        bytes,
                        resumed_from,
                    } => println!(
                        "downloaded {file} ({bytes} bytes, verified; resumed at {resumed_from})"
                    ),
                }
            }
            for e in &report.failures {
                eprintln!("error: {e}");
            }
            if report.failures.is_empty() {
                println!("{}: complete", out.display());
                Ok(0)
            } else {
                eprintln!(
                    "{} file(s) failed; run the same command again to resume",
                    report.failures.len()
                );
                Ok(1)
            }
        }
    }
}
