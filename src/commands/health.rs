//! `health`: one node's readiness (`GET /readyz`), exit 0 only when it is ready — a container health
//! check that needs no curl.

use crate::commands::output::outln;
use serde_json::Value;

use super::output::print_json;
use super::{connect, Quiet, UsageError};
use crate::cli::HealthArgs;
use crate::client::Request;

pub async fn health(a: HealthArgs) -> anyhow::Result<()> {
    let client = connect(&a.client, "health")?;
    if client.endpoints().len() != 1 {
        return Err(UsageError::new(
            "health",
            "invalid --endpoints: health checks one node; give exactly one URL",
        )
        .into());
    }
    let res = client.request(Request::get("/readyz")).await?;
    let mut body: Value = serde_json::from_slice(&res.body).unwrap_or(Value::Null);
    let ready = res.status.is_success() && body["ready"].as_bool() == Some(true);
    if a.client.json {
        if let Value::Object(m) = &mut body {
            m.insert("endpoint".into(), Value::from(res.endpoint.base()));
        }
        print_json(&body);
    } else if ready {
        outln!("{} is ready", res.endpoint);
    } else {
        let detail = body["detail"]
            .as_array()
            .map(|d| {
                d.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| format!("{}", res.status));
        outln!("{} is not ready: {detail}", res.endpoint);
    }
    if ready {
        Ok(())
    } else {
        Err(Quiet.into())
    }
}
