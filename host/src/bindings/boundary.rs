//! What every WIT version's bindings share: the calls into a connector,
//! the import adapters onto the version-independent capabilities, and the
//! conversions between generated and [`crate::contract`] types. Released
//! versions keep these shapes, so one text serves each version's
//! generated module; what differs (how the exports are reached, the error
//! codes, new exports) stays in the version's own module.
//!
//! [`boundary!`] defines the version's `ConnectorPre`, `Connector` and
//! `add_to_linker`, and brings the generated `wit` (types), `log`, `kv` and
//! `outbound_http` modules into scope. It expects: the bindgen output as
//! `generated`, a `Connector::guest()` that reaches the exported functions,
//! `error_code`, the version's mapping of `wit::ErrorCode`, `take_auth`,
//! the manifest's auth (none before 0.2.0), and `take_sharing`, a trigger
//! definition's sharing (none before 0.3.0). The trigger context and enable
//! info differ in their fields before 0.2.0; [`since_0_2_0!`] converts them
//! for 0.2.0 and later.

macro_rules! boundary {
    () => {
        use wasmtime::Store;
        use wasmtime::component::{HasSelf, InstancePre, Linker};

        use crate::capabilities::CallCapabilities;
        use crate::capabilities::http::{HttpError, OutboundRequest};
        use crate::capabilities::kv::KvError;
        use crate::capabilities::log::Level;
        use crate::contract;
        use generated::triggerhost::connector::{kv, log, outbound_http, types as wit};

        /// A component linked against this version, ready to instantiate.
        pub(crate) struct ConnectorPre<T: 'static>(generated::ConnectorPre<T>);

        impl<T: 'static> Clone for ConnectorPre<T> {
            fn clone(&self) -> Self {
                ConnectorPre(self.0.clone())
            }
        }

        /// One live instance of this version.
        pub(crate) struct Connector(generated::Connector);

        impl<T: Send + 'static> ConnectorPre<T> {
            /// Checks the component's exports against the world.
            pub(crate) fn new(instance_pre: InstancePre<T>) -> wasmtime::Result<Self> {
                generated::ConnectorPre::new(instance_pre).map(ConnectorPre)
            }

            pub(crate) async fn instantiate(&self, store: &mut Store<T>) -> wasmtime::Result<Connector> {
                self.0.instantiate_async(store).await.map(Connector)
            }
        }

        /// Adds this version's imports, served by the [`CallCapabilities`] that
        /// `capabilities` finds in the store's data.
        pub(crate) fn add_to_linker<T: Send + 'static>(
            linker: &mut Linker<T>,
            capabilities: fn(&mut T) -> &mut CallCapabilities,
        ) -> wasmtime::Result<()> {
            generated::Connector::add_to_linker::<T, HasSelf<CallCapabilities>>(linker, capabilities)
        }

        impl Connector {
            pub(crate) async fn describe<T: Send>(&self, store: &mut Store<T>) -> wasmtime::Result<contract::Manifest> {
                Ok(self.guest().call_describe(store).await?.into())
            }

            pub(crate) async fn on_enable<T: Send>(
                &self,
                store: &mut Store<T>,
                ctx: contract::TriggerContext,
            ) -> wasmtime::Result<Result<contract::EnableInfo, contract::ConnectorError>> {
                Ok(self.guest().call_on_enable(store, &ctx.into()).await?.map(Into::into).map_err(Into::into))
            }

            pub(crate) async fn on_disable<T: Send>(
                &self,
                store: &mut Store<T>,
                ctx: contract::TriggerContext,
            ) -> wasmtime::Result<Result<(), contract::ConnectorError>> {
                Ok(self.guest().call_on_disable(store, &ctx.into()).await?.map_err(Into::into))
            }

            pub(crate) async fn verify<T: Send>(
                &self,
                store: &mut Store<T>,
                ctx: contract::TriggerContext,
                request: contract::WebhookRequest,
            ) -> wasmtime::Result<Result<contract::Verdict, contract::ConnectorError>> {
                Ok(self.guest().call_verify(store, &ctx.into(), &request.into()).await?.map(Into::into).map_err(Into::into))
            }

            pub(crate) async fn run<T: Send>(
                &self,
                store: &mut Store<T>,
                ctx: contract::TriggerContext,
                input: contract::RunInput,
            ) -> wasmtime::Result<Result<contract::RunOutput, contract::ConnectorError>> {
                Ok(self.guest().call_run(store, &ctx.into(), &input.into()).await?.map(Into::into).map_err(Into::into))
            }

            /// `verify`, then `run` if accepted. The context and request are
            /// converted once and lent to both calls: the body is not copied.
            pub(crate) async fn deliver<T: Send>(
                &self,
                store: &mut Store<T>,
                ctx: contract::TriggerContext,
                request: contract::WebhookRequest,
            ) -> wasmtime::Result<Result<contract::Delivery, contract::ConnectorError>> {
                let ctx = ctx.into();
                let request: wit::WebhookRequest = request.into();
                Ok(match self.guest().call_verify(&mut *store, &ctx, &request).await? {
                    Err(error) => Err(error.into()),
                    Ok(wit::Verdict::Reject(reason)) => Ok(contract::Delivery::Rejected(contract::cut_guest_text(reason))),
                    Ok(wit::Verdict::Respond(response)) => Ok(contract::Delivery::Responded(response.into())),
                    Ok(wit::Verdict::Accept) => {
                        let input = wit::RunInput::Webhook(request);
                        let output = self.guest().call_run(&mut *store, &ctx, &input).await?;
                        output.map(|o| contract::Delivery::Accepted(o.into())).map_err(Into::into)
                    }
                })
            }
        }

        // ---- imports: thin adapters onto the version-independent capabilities ----

        impl wit::Host for CallCapabilities {}

        impl log::Host for CallCapabilities {
            async fn write(&mut self, level: log::Level, message: String) -> wasmtime::Result<()> {
                let level = match level {
                    log::Level::Trace => Level::Trace,
                    log::Level::Debug => Level::Debug,
                    log::Level::Info => Level::Info,
                    log::Level::Warn => Level::Warn,
                    log::Level::Error => Level::Error,
                };
                self.log.write(level, contract::cut(&message, contract::MAX_GUEST_TEXT));
                Ok(())
            }
        }

        impl From<KvError> for kv::KvError {
            fn from(error: KvError) -> Self {
                match error {
                    KvError::Denied => kv::KvError::Denied,
                    KvError::TooManyKeys { .. } => kv::KvError::TooManyKeys,
                    KvError::TooLarge { .. } => kv::KvError::TooLarge,
                    KvError::Unavailable(why) => kv::KvError::Unavailable(why),
                }
            }
        }

        impl kv::Host for CallCapabilities {
            async fn get(&mut self, key: String) -> wasmtime::Result<Result<Option<Vec<u8>>, kv::KvError>> {
                let result = self.kv.get(&key).await;
                Ok(self.noted("kv", result).map_err(Into::into))
            }

            async fn set(&mut self, key: String, value: Vec<u8>) -> wasmtime::Result<Result<(), kv::KvError>> {
                let result = self.kv.set(&key, &value).await;
                Ok(self.noted("kv", result).map_err(Into::into))
            }

            async fn delete(&mut self, key: String) -> wasmtime::Result<Result<(), kv::KvError>> {
                let result = self.kv.delete(&key).await;
                Ok(self.noted("kv", result).map_err(Into::into))
            }

            async fn list_keys(&mut self, prefix: String) -> wasmtime::Result<Result<Vec<String>, kv::KvError>> {
                let result = self.kv.list_keys(&prefix).await;
                Ok(self.noted("kv", result).map_err(Into::into))
            }
        }

        impl outbound_http::Host for CallCapabilities {
            async fn send(
                &mut self,
                request: outbound_http::Request,
            ) -> wasmtime::Result<Result<outbound_http::Response, outbound_http::HttpError>> {
                let request = OutboundRequest {
                    method: request.method,
                    url: request.url,
                    headers: request.headers,
                    body: request.body,
                    timeout_ms: request.timeout_ms,
                };
                let result = self.http.send(request).await;
                Ok(self
                    .noted("outbound-http", result)
                    .map(|r| outbound_http::Response { status: r.status, headers: r.headers, body: r.body })
                    .map_err(|e| match e {
                        HttpError::Denied(why) => outbound_http::HttpError::Denied(why),
                        HttpError::InvalidRequest(why) => outbound_http::HttpError::InvalidRequest(why),
                        HttpError::Timeout => outbound_http::HttpError::Timeout,
                        HttpError::Transport(why) => outbound_http::HttpError::Transport(why),
                        HttpError::TooLarge => outbound_http::HttpError::TooLarge,
                    }))
            }
        }

        // ---- exports: generated types <-> contract types, by move ----

        impl From<wit::Manifest> for contract::Manifest {
            fn from(mut m: wit::Manifest) -> Self {
                let auth = take_auth(&mut m);
                contract::Manifest {
                    name: m.name,
                    display_name: m.display_name,
                    version: m.version,
                    description: m.description,
                    capabilities: contract::CapabilityRequest {
                        outbound_hosts: m.capabilities.outbound_hosts,
                        key_value: m.capabilities.key_value,
                    },
                    auth,
                    triggers: m.triggers.into_iter().map(Into::into).collect(),
                }
            }
        }

        impl From<wit::TriggerDefinition> for contract::TriggerDefinition {
            fn from(mut t: wit::TriggerDefinition) -> Self {
                let sharing = take_sharing(&mut t);
                contract::TriggerDefinition {
                    name: t.name,
                    display_name: t.display_name,
                    description: t.description,
                    strategy: match t.strategy {
                        wit::Strategy::Webhook => contract::Strategy::Webhook,
                        wit::Strategy::Polling => contract::Strategy::Polling,
                    },
                    config_schema: t.config_schema,
                    sample_event: t.sample_event,
                    sharing,
                }
            }
        }

        impl From<contract::WebhookRequest> for wit::WebhookRequest {
            fn from(r: contract::WebhookRequest) -> Self {
                wit::WebhookRequest { method: r.method, query: r.query, headers: r.headers, body: r.body }
            }
        }

        impl From<contract::RunInput> for wit::RunInput {
            fn from(input: contract::RunInput) -> Self {
                match input {
                    contract::RunInput::Webhook(request) => wit::RunInput::Webhook(request.into()),
                    contract::RunInput::Poll(tick) => wit::RunInput::Poll(wit::PollTick {
                        scheduled_at_ms: tick.scheduled_at_ms,
                        last_success_at_ms: tick.last_success_at_ms,
                    }),
                }
            }
        }

        impl From<wit::HttpResponse> for contract::HttpResponse {
            fn from(r: wit::HttpResponse) -> Self {
                contract::HttpResponse { status: r.status, headers: r.headers, body: r.body }
            }
        }

        impl From<wit::Verdict> for contract::Verdict {
            fn from(v: wit::Verdict) -> Self {
                match v {
                    wit::Verdict::Accept => contract::Verdict::Accept,
                    wit::Verdict::Reject(reason) => contract::Verdict::Reject(contract::cut_guest_text(reason)),
                    wit::Verdict::Respond(response) => contract::Verdict::Respond(response.into()),
                }
            }
        }

        impl From<wit::RunOutput> for contract::RunOutput {
            fn from(o: wit::RunOutput) -> Self {
                contract::RunOutput {
                    events: o
                        .events
                        .into_iter()
                        .map(|e| contract::Event {
                            dedupe_key: e.dedupe_key,
                            event_type: e.event_type,
                            occurred_at_ms: e.occurred_at_ms,
                            payload: e.payload,
                        })
                        .collect(),
                    response: o.response.map(Into::into),
                }
            }
        }

        impl From<wit::ConnectorError> for contract::ConnectorError {
            fn from(e: wit::ConnectorError) -> Self {
                contract::ConnectorError {
                    code: error_code(e.code),
                    message: contract::cut_guest_text(e.message),
                    retryable: e.retryable,
                }
            }
        }
    };
}

/// What 0.2.0 and later versions share beyond [`boundary!`]: the error
/// codes (with `gone`), the manifest's auth, the credentials and issued
/// secrets in the trigger context, and the enable info.
macro_rules! since_0_2_0 {
    () => {
        fn error_code(code: wit::ErrorCode) -> contract::ErrorCode {
            match code {
                wit::ErrorCode::InvalidConfig => contract::ErrorCode::InvalidConfig,
                wit::ErrorCode::Unauthorized => contract::ErrorCode::Unauthorized,
                wit::ErrorCode::BadRequest => contract::ErrorCode::BadRequest,
                wit::ErrorCode::Upstream => contract::ErrorCode::Upstream,
                wit::ErrorCode::RateLimited => contract::ErrorCode::RateLimited,
                wit::ErrorCode::CapabilityDenied => contract::ErrorCode::CapabilityDenied,
                wit::ErrorCode::Gone => contract::ErrorCode::Gone,
                wit::ErrorCode::Internal => contract::ErrorCode::Internal,
            }
        }

        /// The manifest's `auth`, taken out for the shared manifest conversion.
        fn take_auth(m: &mut wit::Manifest) -> contract::Auth {
            match std::mem::replace(&mut m.auth, wit::Auth::None) {
                wit::Auth::None => contract::Auth::None,
                wit::Auth::SecretText(text) => {
                    contract::Auth::SecretText { label: text.label, description: text.description }
                }
                wit::Auth::Custom(schema) => contract::Auth::Custom { schema },
                wit::Auth::Oauth2(oauth) => contract::Auth::OAuth2(contract::OAuth2Auth {
                    authorize_url: oauth.authorize_url,
                    token_url: oauth.token_url,
                    scopes: oauth.scopes,
                    pkce: oauth.pkce,
                    extra_params: oauth.extra_params,
                }),
            }
        }

        impl From<contract::TriggerContext> for wit::TriggerContext {
            fn from(c: contract::TriggerContext) -> Self {
                wit::TriggerContext {
                    trigger_id: c.trigger_id,
                    trigger_name: c.trigger_name,
                    config: c.config,
                    secret: c.secret,
                    webhook_url: c.webhook_url,
                    credentials: c.credentials.map(|credentials| match credentials {
                        contract::Credentials::SecretText(key) => wit::Credentials::SecretText(key),
                        contract::Credentials::Custom(props) => wit::Credentials::Custom(props),
                        contract::Credentials::OAuth2(token) => wit::Credentials::Oauth2(wit::AccessToken {
                            token: token.token,
                            expires_at_ms: token.expires_at_ms,
                            scopes: token.scopes,
                        }),
                    }),
                    issued_secrets: c.issued_secrets,
                }
            }
        }

        impl From<wit::EnableInfo> for contract::EnableInfo {
            fn from(info: wit::EnableInfo) -> Self {
                contract::EnableInfo { expires_at_ms: info.expires_at_ms, issued_secrets: info.issued_secrets }
            }
        }

        impl Connector {
            /// `renew`: extends the subscription, reporting its new expiry.
            pub(crate) async fn renew<T: Send>(
                &self,
                store: &mut Store<T>,
                ctx: contract::TriggerContext,
            ) -> wasmtime::Result<Result<contract::EnableInfo, contract::ConnectorError>> {
                Ok(self.guest().call_renew(store, &ctx.into()).await?.map(Into::into).map_err(Into::into))
            }
        }
    };
}
