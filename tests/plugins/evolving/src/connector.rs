//! A webhook connector in two versions, told apart by the package version:
//! 1.0.0 has webhook triggers `alpha`, `beta` (any `label`) and `delta`, and
//! asks for nothing; 2.0.0 drops `alpha`, adds `gamma`, accepts only `blue`
//! or `green` as `beta`'s label, polls for `delta`, and asks for the
//! key-value store. Activating 2.0.0 over 1.0.0 breaks some triggers four
//! ways, which the host must refuse.

use triggerhost_sdk::schema::{ConfigSchema, Prop};
use triggerhost_sdk::*;

pub struct Evolving;

const VERSION: &str = env!("CARGO_PKG_VERSION");

fn is_next() -> bool {
    VERSION != "1.0.0"
}

impl Connector for Evolving {
    fn describe() -> Manifest {
        let any_label = || ConfigSchema::new().prop("label", Prop::string("Label"));
        let builder = ManifestBuilder::new("evolving", "Evolving", VERSION);
        if is_next() {
            let colors = ConfigSchema::new().prop("label", Prop::one_of("Label", &["blue", "green"]).required());
            builder
                .key_value()
                .trigger(TriggerBuilder::webhook("beta", "Beta").config(colors))
                .trigger(TriggerBuilder::webhook("gamma", "Gamma").config(any_label()))
                .trigger(TriggerBuilder::polling("delta", "Delta").config(any_label()))
                .build()
        } else {
            builder
                .trigger(TriggerBuilder::webhook("alpha", "Alpha").config(any_label()))
                .trigger(TriggerBuilder::webhook("beta", "Beta").config(any_label()))
                .trigger(TriggerBuilder::webhook("delta", "Delta").config(any_label()))
                .build()
        }
    }

    fn verify(_ctx: TriggerContext, _request: WebhookRequest) -> Result<Verdict, ConnectorError> {
        Ok(Verdict::Accept)
    }

    fn run(_ctx: TriggerContext, input: RunInput) -> Result<RunOutput, ConnectorError> {
        let RunInput::Webhook(request) = input else {
            return Ok(RunOutput::from_events(Vec::new()));
        };
        let payload = String::from_utf8(request.body)
            .map_err(|_| ConnectorError::new(ErrorCode::BadRequest, "body is not UTF-8"))?;
        Ok(RunOutput::from_events(vec![Event::raw("evolving.event", payload)]))
    }
}
