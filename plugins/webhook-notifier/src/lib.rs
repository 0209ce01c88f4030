//! An async observer of `integration_saved`, `integration_activated`, `integration_deleted` and
//! `tokens_revoked` that POSTs each event as JSON to the operator's webhook (the variable
//! `webhook_url`), signed with `X-Signature: sha256=<hex of HMAC-SHA256(webhook_secret, body)>`.
//!
//! The body is the event's fields with `"event"` its name, the integration's `"id"` and
//! `"name"` where there is one, and `"event_id"`, the event's stable id (also in the header
//! `X-Event-Id`): the server delivers every event at least once, so a receiver drops an id it
//! has seen. A receiver that answers anything but 2xx, or cannot be reached, fails the delivery,
//! and the server tries it again later (see README.md).

use hmac::{Hmac, Mac as _};
use integration_host_sdk::http;
use integration_host_sdk::prelude::*;
use serde_json::{Value, json};
use sha2::Sha256;

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {}

/// Where to post and what to sign with, read from the operator's variables.
struct WebhookNotifier {
    url: String,
    secret: String,
}

impl Plugin for WebhookNotifier {
    type Config = Config;

    fn new(_: Config) -> Result<Self, PluginError> {
        let url = variable("webhook_url").ok_or_else(|| {
            PluginError::Failed("the variable webhook_url is not set for this plugin".into())
        })?;
        let secret = variable("webhook_secret").ok_or_else(|| {
            PluginError::Failed("the variable webhook_secret is not set for this plugin".into())
        })?;
        Ok(Self { url, secret })
    }
}

/// The event as the webhook receives it, without its id; `None` for events it does not post.
fn body(event: &Event) -> Option<Value> {
    let integration =
        |name: &str, i: &IntegrationRef| json!({"event": name, "id": i.id, "name": i.name});
    Some(match event {
        Event::IntegrationSaved(saved) => {
            let mut v = integration("integration_saved", &saved.integration);
            v["created"] = json!(saved.created);
            v
        }
        Event::IntegrationActivated(i) => integration("integration_activated", i),
        Event::IntegrationDeleted(i) => integration("integration_deleted", i),
        Event::TokensRevoked(r) => json!({
            "event": "tokens_revoked",
            "user_type": match r.user_type {
                UserType::Admin => "admin",
                UserType::Customer => "customer",
                UserType::Integration => "integration",
            },
            "user_id": r.user_id,
            "reason": r.reason,
        }),
        _ => return None,
    })
}

/// `sha256=` and the lower-case hex of HMAC-SHA256(secret, body).
fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

impl Observer for WebhookNotifier {
    fn on_event(&self, event: Event) -> Result<Outcome, PluginError> {
        let Some(mut payload) = body(&event) else {
            return Ok(Outcome::Proceed);
        };
        let delivery = delivery();
        let event_id = delivery.as_ref().map(|d| d.event_id.clone());
        if let Some(id) = &event_id {
            payload["event_id"] = json!(id);
        }
        let bytes = serde_json::to_vec(&payload).map_err(|e| PluginError::Failed(e.to_string()))?;
        let mut request = http::Request::post(&self.url, bytes.clone())
            .header("content-type", "application/json")
            .header("x-signature", &signature(&self.secret, &bytes));
        if let Some(id) = &event_id {
            request = request.header("x-event-id", id);
        }
        let answer = request.send()?;
        if !(200..300).contains(&answer.status) {
            // Fails the delivery: the server tries it again later.
            return Err(PluginError::Failed(format!(
                "the webhook answered {}",
                answer.status
            )));
        }
        info!(
            "event posted to the webhook",
            event = payload["event"].as_str().unwrap_or_default(),
            event_id = event_id.unwrap_or_default(),
            attempt = delivery.map(|d| d.attempt).unwrap_or(0),
        );
        Ok(Outcome::Proceed)
    }
}

register!(WebhookNotifier: observer);
