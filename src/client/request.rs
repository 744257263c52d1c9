//! Where a Responses request goes and what it carries (auth.md §5, model-api.md §2): the
//! endpoint for the provider and credential kind, the bearer token (OpenAI credentials or the
//! provider's `env_key`), and the header set. Pure, apart from reading the `env_key`
//! variable; sending is `round_trip.rs`.

use super::{AuthProvider, ClientError, CredentialKind, Credentials, Settings};
use crate::secret::Secret;

/// Whose token authorizes a request.
#[derive(Debug, Clone)]
pub(super) enum Bearer {
    /// The user's OpenAI/ChatGPT credentials (built-in provider, `requires_openai_auth`).
    OpenAi(Credentials),
    /// The value of the provider's `env_key` variable.
    EnvKey(Secret),
    /// No `Authorization` header.
    None,
}

/// Decides the bearer for one attempt: OpenAI credentials when the provider requires them
/// (none → "not logged in"), else the `env_key` variable (unset or blank → the reference's
/// "Missing environment variable" error), else nothing.
pub(super) fn resolve_bearer(
    settings: &Settings,
    auth: &dyn AuthProvider,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Bearer, ClientError> {
    if settings.provider.requires_openai_auth {
        return match auth.credentials()? {
            Some(credentials) => Ok(Bearer::OpenAi(credentials)),
            None => Err(ClientError::not_logged_in()),
        };
    }
    match &settings.provider.env_key {
        Some(name) => match env(name).filter(|v| !v.trim().is_empty()) {
            Some(value) => Ok(Bearer::EnvKey(Secret::new(value))),
            None => Err(ClientError::missing_env_var(name)),
        },
        None => Ok(Bearer::None),
    }
}

/// `POST` target: `<base_url>/responses` for a provider with a base URL; for the built-in
/// provider (no base URL) `<openai_base_url>/responses` with an API key and
/// `<chatgpt base>/codex/responses` with ChatGPT credentials, where the ChatGPT base is
/// `chatgpt_base` (the configured one, or the workspace's routed origin).
pub(super) fn endpoint(settings: &Settings, bearer: &Bearer, chatgpt_base: &str) -> String {
    if let Some(base) = &settings.provider.base_url {
        return format!("{}/responses", base.trim_end_matches('/'));
    }
    match bearer {
        Bearer::OpenAi(Credentials {
            kind: CredentialKind::ChatGpt,
            ..
        }) => format!("{}/codex/responses", chatgpt_base.trim_end_matches('/')),
        _ => format!("{}/responses", settings.openai_base_url),
    }
}

/// Whether a request with `bearer` goes to the ChatGPT backend (workspace routing applies).
pub(super) fn is_chatgpt(settings: &Settings, bearer: &Bearer) -> bool {
    settings.provider.base_url.is_none()
        && matches!(
            bearer,
            Bearer::OpenAi(Credentials {
                kind: CredentialKind::ChatGpt,
                ..
            })
        )
}

/// Headers we set ourselves; the provider's `http_headers` cannot replace these.
const OWN_HEADERS: &[&str] = &[
    "authorization",
    "chatgpt-account-id",
    "originator",
    "user-agent",
    "version",
    "session-id",
    "thread-id",
    "x-client-request-id",
    "x-openai-internal-codex-responses-lite",
    "x-openai-account-routing-override",
    "accept",
    "content-type",
];

/// The header that marks a Responses Lite request (models.md §3a).
pub(super) const RESPONSES_LITE_HEADER: &str = "x-openai-internal-codex-responses-lite";

/// The headers of one request. The `Authorization` value lives only in `authorization`.
#[derive(Debug)]
pub(super) struct Headers {
    /// `Bearer <token>`, when there is a token.
    pub authorization: Option<Secret>,
    /// Every other header, in sending order, names lowercase for ours.
    pub plain: Vec<(String, String)>,
}

/// What a request says about itself beyond auth: its thread, shape and routing.
#[derive(Debug, Clone, Default)]
pub(super) struct RequestMeta<'a> {
    /// The thread id: `session-id`, `thread-id` and `x-client-request-id` (as the reference).
    pub thread_id: &'a str,
    /// A Responses Lite request.
    pub lite: bool,
    /// `x-openai-account-routing-override` of a routed ChatGPT workspace (`us`, `us_cr`).
    pub routing_override: Option<&'a str>,
}

/// Builds the header set: `Authorization`, `chatgpt-account-id` (ChatGPT credentials with an
/// account id), `originator`, `user-agent`, `version`, `session-id`, `thread-id`,
/// `x-client-request-id`, the Lite and routing headers when they apply, `accept`,
/// `content-type`, then the provider's `http_headers` (those naming one of ours are skipped).
pub(super) fn headers(settings: &Settings, bearer: &Bearer, meta: &RequestMeta<'_>) -> Headers {
    let mut plain = Vec::with_capacity(12 + settings.provider.http_headers.len());
    let token = match bearer {
        Bearer::OpenAi(credentials) => {
            if credentials.kind == CredentialKind::ChatGpt
                && let Some(account) = &credentials.account_id
            {
                plain.push(("chatgpt-account-id".to_string(), account.clone()));
            }
            Some(&credentials.token)
        }
        Bearer::EnvKey(token) => Some(token),
        Bearer::None => None,
    };
    plain.push(("originator".to_string(), settings.originator.clone()));
    plain.push(("user-agent".to_string(), settings.user_agent.clone()));
    plain.push(("version".to_string(), super::CODEX_VERSION.to_string()));
    for name in ["session-id", "thread-id", "x-client-request-id"] {
        plain.push((name.to_string(), meta.thread_id.to_string()));
    }
    if meta.lite {
        plain.push((RESPONSES_LITE_HEADER.to_string(), "true".to_string()));
    }
    if let Some(value) = meta.routing_override {
        plain.push((
            "x-openai-account-routing-override".to_string(),
            value.to_string(),
        ));
    }
    plain.push(("accept".to_string(), "text/event-stream".to_string()));
    plain.push(("content-type".to_string(), "application/json".to_string()));
    for (name, value) in &settings.provider.http_headers {
        if OWN_HEADERS.iter().any(|own| own.eq_ignore_ascii_case(name)) {
            crate::log::debug(&format!(
                "provider http_headers: {name} is set by the client; ignoring the configured value"
            ));
            continue;
        }
        plain.push((name.clone(), value.clone()));
    }
    Headers {
        authorization: token.map(|t| Secret::new(format!("Bearer {}", t.expose()))),
        plain,
    }
}

/// Whether a URL's host is loopback (`localhost`, `127.0.0.0/8`, `::1`): such requests never
/// go through an environment proxy.
pub(super) fn is_loopback_url(url: &str) -> bool {
    let Some((_, rest)) = url.split_once("://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit('@').next().unwrap_or(authority);
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host_port.split(':').next().unwrap_or(""),
    };
    let host = host.trim_end_matches('.');
    host.eq_ignore_ascii_case("localhost")
        || host.to_ascii_lowercase().ends_with(".localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::config::ModelProviderInfo;
    use std::collections::BTreeMap;

    struct FixedAuth(Option<Credentials>);

    impl AuthProvider for FixedAuth {
        fn credentials(&self) -> Result<Option<Credentials>, ClientError> {
            Ok(self.0.clone())
        }
        fn recover_unauthorized(&self, _: &Credentials) -> Result<bool, ClientError> {
            Ok(false)
        }
    }

    fn settings(provider: ModelProviderInfo) -> Settings {
        Settings {
            provider,
            openai_base_url: "https://api.example/v1".into(),
            chatgpt_base_url: "https://chat.example/backend-api".into(),
            originator: "codex_vscode".into(),
            user_agent: "codex_vscode/1.0".into(),
        }
    }

    fn custom(
        base_url: Option<&str>,
        env_key: Option<&str>,
        openai_auth: bool,
    ) -> ModelProviderInfo {
        ModelProviderInfo {
            name: "mock".into(),
            base_url: base_url.map(str::to_string),
            env_key: env_key.map(str::to_string),
            requires_openai_auth: openai_auth,
            http_headers: BTreeMap::from([
                ("X-Extra".to_string(), "1".to_string()),
                ("Originator".to_string(), "nope".to_string()),
            ]),
            ..ModelProviderInfo::openai()
        }
    }

    fn api_key() -> Credentials {
        Credentials {
            kind: CredentialKind::ApiKey,
            token: Secret::new("sk-test"),
            account_id: None,
        }
    }

    fn chatgpt(account: Option<&str>) -> Credentials {
        Credentials {
            kind: CredentialKind::ChatGpt,
            token: Secret::new("access-token"),
            account_id: account.map(str::to_string),
        }
    }

    fn env(name: &str) -> Option<String> {
        match name {
            "MOCK_KEY" => Some("mock-secret".into()),
            "BLANK" => Some("  ".into()),
            _ => None,
        }
    }

    #[test]
    fn endpoint_and_auth_for_each_provider_and_credential() {
        struct Case {
            name: &'static str,
            provider: ModelProviderInfo,
            credentials: Option<Credentials>,
            url: &'static str,
            authorization: Option<&'static str>,
            account: Option<&'static str>,
        }
        let cases = [
            Case {
                name: "built-in, api key",
                provider: ModelProviderInfo::openai(),
                credentials: Some(api_key()),
                url: "https://api.example/v1/responses",
                authorization: Some("Bearer sk-test"),
                account: None,
            },
            Case {
                name: "built-in, chatgpt with account",
                provider: ModelProviderInfo::openai(),
                credentials: Some(chatgpt(Some("acc-1"))),
                url: "https://chat.example/backend-api/codex/responses",
                authorization: Some("Bearer access-token"),
                account: Some("acc-1"),
            },
            Case {
                name: "built-in, chatgpt without account",
                provider: ModelProviderInfo::openai(),
                credentials: Some(chatgpt(None)),
                url: "https://chat.example/backend-api/codex/responses",
                authorization: Some("Bearer access-token"),
                account: None,
            },
            Case {
                name: "custom with env key",
                provider: custom(Some("http://127.0.0.1:9/v1/"), Some("MOCK_KEY"), false),
                credentials: Some(chatgpt(Some("ignored"))),
                url: "http://127.0.0.1:9/v1/responses",
                authorization: Some("Bearer mock-secret"),
                account: None,
            },
            Case {
                name: "custom without auth",
                provider: custom(Some("http://h/v1"), None, false),
                credentials: None,
                url: "http://h/v1/responses",
                authorization: None,
                account: None,
            },
            Case {
                name: "custom requiring openai auth keeps its base url",
                provider: custom(Some("http://h/v1"), Some("MOCK_KEY"), true),
                credentials: Some(chatgpt(Some("acc-2"))),
                url: "http://h/v1/responses",
                authorization: Some("Bearer access-token"),
                account: Some("acc-2"),
            },
        ];
        for case in cases {
            let settings = settings(case.provider);
            let auth = FixedAuth(case.credentials);
            let bearer = resolve_bearer(&settings, &auth, env).unwrap();
            assert_eq!(
                endpoint(&settings, &bearer, &settings.chatgpt_base_url),
                case.url,
                "{}",
                case.name
            );
            let meta = RequestMeta {
                thread_id: "thread-1",
                ..Default::default()
            };
            let headers = headers(&settings, &bearer, &meta);
            assert_eq!(
                headers.authorization.as_ref().map(Secret::expose),
                case.authorization,
                "{}",
                case.name
            );
            let get = |name: &str| {
                headers
                    .plain
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v.as_str())
            };
            assert_eq!(get("chatgpt-account-id"), case.account, "{}", case.name);
            assert_eq!(get("originator"), Some("codex_vscode"));
            assert_eq!(get("user-agent"), Some("codex_vscode/1.0"));
            for name in ["session-id", "thread-id", "x-client-request-id"] {
                assert_eq!(get(name), Some("thread-1"), "{name}");
            }
            assert_eq!(get("version"), Some(crate::client::CODEX_VERSION));
            assert_eq!(get(RESPONSES_LITE_HEADER), None);
            assert_eq!(get("accept"), Some("text/event-stream"));
            assert_eq!(get("content-type"), Some("application/json"));
            assert!(
                format!("{headers:?}").contains("<redacted>") || headers.authorization.is_none()
            );
            assert!(!format!("{headers:?}").contains("sk-test"));
        }
    }

    #[test]
    fn provider_headers_are_added_but_cannot_replace_ours() {
        let settings = settings(custom(Some("http://h"), None, false));
        let meta = RequestMeta {
            thread_id: "s",
            lite: true,
            routing_override: Some("us"),
        };
        let headers = headers(&settings, &Bearer::None, &meta);
        let get = |name: &str| {
            headers
                .plain
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get(RESPONSES_LITE_HEADER), Some("true"));
        assert_eq!(get("x-openai-account-routing-override"), Some("us"));
        assert!(
            headers
                .plain
                .contains(&("X-Extra".to_string(), "1".to_string()))
        );
        assert!(!headers.plain.iter().any(|(_, v)| v == "nope"));
    }

    #[test]
    fn auth_errors() {
        let openai = settings(ModelProviderInfo::openai());
        let err = resolve_bearer(&openai, &FixedAuth(None), env).unwrap_err();
        assert_eq!(err.message, "not logged in: run account/login/start first");
        assert_eq!(err.info, crate::protocol::CodexErrorInfo::Unauthorized);

        for var in ["UNSET_VAR", "BLANK"] {
            let missing = settings(custom(Some("http://h"), Some(var), false));
            let err = resolve_bearer(&missing, &FixedAuth(None), env).unwrap_err();
            assert_eq!(
                err.message,
                format!("Missing environment variable: `{var}`.")
            );
            assert!(!err.is_stream_disconnect);
        }
    }

    #[test]
    fn loopback_detection() {
        for (url, want) in [
            ("http://127.0.0.1:8080/v1", true),
            ("http://127.1.2.3/v1", true),
            ("http://localhost:1/v1", true),
            ("http://LOCALHOST./v1", true),
            ("http://api.localhost/v1", true),
            ("http://[::1]:9/v1", true),
            ("http://user:pw@127.0.0.1:9/v1", true),
            ("https://api.openai.com/v1", false),
            ("https://chatgpt.com/backend-api", false),
            ("http://10.0.0.1/v1", false),
            ("http://[::2]/v1", false),
            ("http://localhost.evil.com/v1", false),
            ("not a url", false),
        ] {
            assert_eq!(is_loopback_url(url), want, "{url}");
        }
    }
}
