//! Phase 1 and phase 2: `IkeConfig` and `IpsecConfig` read, defaulted and merged; the PSK rules.

use super::*;

// ---------------------------------------------------------------------------------------------
// Phase 1.

impl IkeConfig {
    pub const KEYS: &'static [&'static str] =
        &["Psk", "IkeVersion", "IkeMode", "IkeEncAlg", "IkeAuthAlg", "IkePfs", "IkeLifetime", "LocalId", "RemoteId"];

    /// `IkeConfig` of CreateVpnConnection. Whatever is absent takes its default.
    pub fn parse(json: Option<&str>, d: &Defaults) -> ApiResult<IkeConfig> {
        let o = Section::parse(SINGLE.name("IkeConfig"), json, Self::KEYS, invalid)?;
        Self::require_remote_id(&o, d)?;
        Self::defaults(d).apply(&o, d, SINGLE)
    }

    /// `IkeConfig` of ModifyVpnConnectionAttribute. Whatever is absent (the PSK too) keeps its
    /// current value.
    pub fn merge(&self, json: Option<&str>, d: &Defaults) -> ApiResult<IkeConfig> {
        self.apply(&Section::parse(SINGLE.name("IkeConfig"), json, Self::KEYS, invalid)?, d, SINGLE)
    }

    /// A national-standard connection is created with the RemoteId given: its default (the
    /// customer gateway's IP) cannot be the subject of the peer's certificate.
    pub(super) fn require_remote_id(o: &Section, d: &Defaults) -> ApiResult<()> {
        if d.national_standard && o.value("RemoteId").is_none() {
            return Err(ApiError::bad_request(
                "MissingParam.RemoteId",
                "The remote ID is mandatory when creating national standard VPN connection.",
            ));
        }
        Ok(())
    }

    /// The defaults, with a fresh random PSK.
    pub(super) fn defaults(d: &Defaults) -> IkeConfig {
        let (enc, auth) = d.default_algs();
        IkeConfig {
            psk: Sealed::seal(d.master_key, &random_psk()),
            ike_version: "ikev1".into(),
            ike_mode: "main".into(),
            ike_enc_alg: enc.into(),
            ike_auth_alg: auth.into(),
            ike_pfs: "group2".into(),
            ike_lifetime: MAX_LIFETIME,
            local_id: d.local_ip.into(),
            remote_id: d.remote_ip.into(),
        }
    }

    pub(super) fn apply(&self, o: &Section, d: &Defaults, scope: Scope) -> ApiResult<IkeConfig> {
        let ike_version = pick(o.choice("IkeVersion", IKE_VERSIONS)?, &self.ike_version);
        let ike_enc_alg = enc_alg(o, "IkeEncAlg", d, ike_version == "ikev1")?;
        Ok(IkeConfig {
            psk: match o.text("Psk")? {
                Some(psk) => Sealed::seal(d.master_key, &check_psk(o, Secret::new(psk))?),
                None => self.psk.clone(),
            },
            ike_mode: pick(o.choice("IkeMode", IKE_MODES)?, &self.ike_mode),
            ike_enc_alg: pick(ike_enc_alg, &self.ike_enc_alg),
            ike_auth_alg: pick(o.choice("IkeAuthAlg", &d.auth_algs())?, &self.ike_auth_alg),
            ike_pfs: pick(o.choice("IkePfs", PFS_GROUPS)?, &self.ike_pfs),
            ike_lifetime: o.int("IkeLifetime", 0..=MAX_LIFETIME)?.unwrap_or(self.ike_lifetime),
            local_id: ike_id(o, "LocalId", scope)?.unwrap_or_else(|| self.local_id.clone()),
            remote_id: ike_id(o, "RemoteId", scope)?.unwrap_or_else(|| self.remote_id.clone()),
            ike_version,
        })
    }

    /// The phase-1 proposal, as a data plane takes it.
    pub fn proposal(&self) -> Proposal {
        Proposal { enc: self.ike_enc_alg.clone(), auth: self.ike_auth_alg.clone(), dh: self.ike_pfs.clone() }
    }

    /// As DescribeVpnConnection, ModifyVpnConnectionAttribute and DownloadVpnConnectionConfig show
    /// it. The PSK is in clear: clients (Terraform) read a generated one back.
    pub fn wire(&self, key: &MasterKey) -> ApiResult<Value> {
        Ok(json!({
            "IkeVersion": self.ike_version,
            "IkeMode": self.ike_mode,
            "IkeEncAlg": self.ike_enc_alg,
            "IkeAuthAlg": self.ike_auth_alg,
            "IkePfs": self.ike_pfs,
            "IkeLifetime": self.ike_lifetime,
            "LocalId": self.local_id,
            "RemoteId": self.remote_id,
            "Psk": self.psk.open(key)?.expose(),
        }))
    }
}

/// A PSK the system picks when none is given: 16 random letters and digits. Never one that
/// begins with `0x` or `0s` (either case): strongSwan reads such a secret as hex or base64, so a
/// customer who pastes it into swanctl.conf would get another key.
pub(super) fn random_psk() -> Secret {
    loop {
        let psk = Alphanumeric.sample_string(&mut rand::thread_rng(), 16);
        if !crate::secret::encoded_for_strongswan(&psk) {
            return Secret::new(psk);
        }
    }
}

/// 1-100 characters: letters, digits and the documented symbols (no spaces). The error never
/// shows the value.
pub(super) fn check_psk(o: &Section, psk: Secret) -> ApiResult<Secret> {
    let p = psk.expose();
    if (1..=100).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric() || PSK_SYMBOLS.contains(c)) {
        Ok(psk)
    } else {
        Err(o.err("Psk", &format!("it must be 1-100 characters: letters, digits and {PSK_SYMBOLS}")))
    }
}

/// `LocalId`/`RemoteId`: at most 100 characters and no control characters. A tunnel's ID also
/// may not contain spaces (000).
pub(super) fn ike_id(o: &Section, key: &str, scope: Scope) -> ApiResult<Option<String>> {
    let Some(id) = o.text(key)? else { return Ok(None) };
    let bad_char = |c: char| c.is_control() || (scope.tunnel() && c == ' ');
    if id.chars().count() > 100 || id.chars().any(bad_char) {
        return Err(o.err(key, "it must be at most 100 characters, without spaces in a tunnel"));
    }
    Ok(Some(id))
}

/// An encryption algorithm. Only single algorithms from the list are supported. Two documented
/// errors outrank the generic one: des/3des in a multi-algorithm list, and gcm16 under IKEv1.
pub(super) fn enc_alg(o: &Section, key: &str, d: &Defaults, ikev1: bool) -> ApiResult<Option<&'static str>> {
    let allowed = d.enc_algs();
    o.choice_or(key, &allowed, |v| {
        let v = v.to_ascii_lowercase();
        let algs: Vec<&str> = v.split(',').map(str::trim).collect();
        if algs.len() > 1 && algs.iter().any(|a| *a == "des" || *a == "3des") {
            ApiError::bad_request(
                "EncAlgInvalid.DesIncompatible",
                "Des/3des in IkeEncAlg and IpsecEncAlg does not support multi algorithm.",
            )
        } else if ikev1 && v.contains("gcm") {
            ApiError::bad_request("IkeVersionInvalid.GcmIncompatible", "Ikev1 does not support IkeEncAlg of gcm16.")
        } else {
            o.not_one_of(key, &v, &allowed)
        }
    })
}

/// Whether two connections negotiate the same IKE SA: same PSK and same phase-1 settings,
/// identities included. Connections on the same VPN gateway and customer gateway must.
pub fn same_ike(a: &IkeConfig, b: &IkeConfig, key: &MasterKey) -> ApiResult<bool> {
    let same_settings = IkeConfig { psk: b.psk.clone(), ..a.clone() } == *b;
    Ok(same_settings && (a.psk == b.psk || a.psk.open(key)?.ct_eq(b.psk.open(key)?.expose())))
}

/// The IPsec server's (remote access) starting point: IKEv2 main mode, aes/sha1/group2 for a day
/// in both phases; LocalId the gateway's address, RemoteId empty (any client); the PSK given.
pub fn server_defaults(d: &Defaults, psk: &Secret) -> (IkeConfig, IpsecConfig) {
    let ike = IkeConfig {
        psk: Sealed::seal(d.master_key, psk),
        ike_version: "ikev2".into(),
        ike_mode: "main".into(),
        ike_enc_alg: "aes".into(),
        ike_auth_alg: "sha1".into(),
        ike_pfs: "group2".into(),
        ike_lifetime: MAX_LIFETIME,
        local_id: d.local_ip.into(),
        remote_id: String::new(),
    };
    let ipsec = IpsecConfig {
        ipsec_enc_alg: "aes".into(),
        ipsec_auth_alg: "sha1".into(),
        ipsec_pfs: "group2".into(),
        ipsec_lifetime: MAX_LIFETIME,
        ipsec_lifetime_kb: 0,
    };
    (ike, ipsec)
}

/// The IPsec server's `Psk` parameter (1-100 characters: letters, digits and the documented
/// symbols), or a random 16-character one when it is absent.
pub fn server_psk(value: Option<String>) -> ApiResult<Secret> {
    let Some(psk) = value else { return Ok(random_psk()) };
    let ok =
        (1..=100).contains(&psk.len()) && psk.chars().all(|c| c.is_ascii_alphanumeric() || PSK_SYMBOLS.contains(c));
    if ok {
        Ok(Secret::new(psk))
    } else {
        Err(ApiError::invalid_parameter(
            "Psk",
            format!("it must be 1-100 characters: letters, digits and {PSK_SYMBOLS}"),
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// Phase 2.

impl IpsecConfig {
    pub const KEYS: &'static [&'static str] = &["IpsecEncAlg", "IpsecAuthAlg", "IpsecPfs", "IpsecLifetime"];

    /// `IpsecConfig` of CreateVpnConnection.
    pub fn parse(json: Option<&str>, d: &Defaults) -> ApiResult<IpsecConfig> {
        Self::defaults(d).merge(json, d)
    }

    pub(super) fn defaults(d: &Defaults) -> IpsecConfig {
        let (enc, auth) = d.default_algs();
        IpsecConfig {
            ipsec_enc_alg: enc.into(),
            ipsec_auth_alg: auth.into(),
            ipsec_pfs: "group2".into(),
            ipsec_lifetime: MAX_LIFETIME,
            ipsec_lifetime_kb: 0,
        }
    }

    /// `IpsecConfig` of ModifyVpnConnectionAttribute.
    pub fn merge(&self, json: Option<&str>, d: &Defaults) -> ApiResult<IpsecConfig> {
        self.apply(&Section::parse(SINGLE.name("IpsecConfig"), json, Self::KEYS, invalid)?, d, SINGLE)
    }

    pub(super) fn apply(&self, o: &Section, d: &Defaults, scope: Scope) -> ApiResult<IpsecConfig> {
        let pfs_groups = if scope.tunnel() { TUNNEL_IPSEC_PFS } else { PFS_GROUPS };
        let auth = o.choice_or("IpsecAuthAlg", &d.auth_algs(), |_| {
            ApiError::bad_request(
                "NotSupportVpnConnectionParameter.IpsecAuthAlg",
                "The specified vpn connection ipsec Auth Alg is not support.",
            )
        })?;
        let pfs = o.choice_or("IpsecPfs", pfs_groups, |_| {
            ApiError::bad_request(
                "NotSupportVpnConnectionParameter.IpsecPfs",
                "The specified vpn connection ipsec Ipsec Pfs is not support.",
            )
        })?;
        Ok(IpsecConfig {
            ipsec_enc_alg: pick(enc_alg(o, "IpsecEncAlg", d, false)?, &self.ipsec_enc_alg),
            ipsec_auth_alg: pick(auth, &self.ipsec_auth_alg),
            ipsec_pfs: pick(pfs, &self.ipsec_pfs),
            ipsec_lifetime: o.int("IpsecLifetime", 0..=MAX_LIFETIME)?.unwrap_or(self.ipsec_lifetime),
            ipsec_lifetime_kb: self.ipsec_lifetime_kb,
        })
    }

    /// The phase-2 proposal, as a data plane takes it.
    pub fn proposal(&self) -> Proposal {
        Proposal { enc: self.ipsec_enc_alg.clone(), auth: self.ipsec_auth_alg.clone(), dh: self.ipsec_pfs.clone() }
    }

    pub fn wire(&self) -> Value {
        json!({
            "IpsecEncAlg": self.ipsec_enc_alg,
            "IpsecAuthAlg": self.ipsec_auth_alg,
            "IpsecPfs": self.ipsec_pfs,
            "IpsecLifetime": self.ipsec_lifetime,
        })
    }
}
