//! Bindings for `triggerhost:connector@0.1.0`, frozen: its exports are
//! functions of the world itself, so a component exporting a root
//! `describe` targets this version.

mod generated {
    wasmtime::component::bindgen!({
        path: "../wit/0.1.0",
        world: "connector",
        imports: { default: async | trappable },
        exports: { default: async },
    });
}


impl Connector {
    /// The exported functions: the world's own.
    fn guest(&self) -> &generated::Connector {
        &self.0
    }
}

fn error_code(code: wit::ErrorCode) -> contract::ErrorCode {
    match code {
        wit::ErrorCode::InvalidConfig => contract::ErrorCode::InvalidConfig,
        wit::ErrorCode::Unauthorized => contract::ErrorCode::Unauthorized,
        wit::ErrorCode::BadRequest => contract::ErrorCode::BadRequest,
        wit::ErrorCode::Upstream => contract::ErrorCode::Upstream,
        wit::ErrorCode::RateLimited => contract::ErrorCode::RateLimited,
        wit::ErrorCode::CapabilityDenied => contract::ErrorCode::CapabilityDenied,
        wit::ErrorCode::Internal => contract::ErrorCode::Internal,
    }
}

boundary!();
