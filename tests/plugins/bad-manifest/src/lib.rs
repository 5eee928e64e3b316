//! A connector whose manifest is invalid: the host must refuse to load it.

use triggerhost_sdk::*;

struct BadManifest;

impl Connector for BadManifest {
    fn describe() -> Manifest {
        ManifestBuilder::new("Bad Manifest", "Bad", "not-semver")
            .trigger(TriggerBuilder::webhook("Has-Dashes", "Bad trigger"))
            .build()
    }

    fn run(_ctx: TriggerContext, _input: RunInput) -> Result<RunOutput, ConnectorError> {
        Ok(RunOutput::from_events(Vec::new()))
    }
}

export_connector!(BadManifest);
