//! Each SSL-VPN server's certificate authority: a CA of its own, the server's certificate, client
//! certificates and the revocation list, all real X.509 (ECDSA P-256, SHA-256) made with rcgen.
//! What OpenVPN expects of them: the CA is a CA (basic constraints, keyCertSign, cRLSign); the
//! server certificate carries serverAuth (for `remote-cert-tls server`), a client certificate
//! clientAuth (for `remote-cert-tls client`); subjects name the resource they belong to.

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, CertificateRevocationListParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyIdMethod, KeyPair, KeyUsagePurpose, RevocationReason, RevokedCertParams,
    SerialNumber,
};
use time::{Duration, OffsetDateTime};

use crate::api::error::{ApiError, ApiResult};
use crate::secret::Secret;

/// How long a CA and a server certificate are valid.
const CA_DAYS: i64 = 10 * 365;
/// How long a client certificate is valid (then its Status is `expired`).
pub const CLIENT_DAYS: i64 = 3 * 365;
/// The organisation every subject names.
const ORGANIZATION: &str = "Gatehouse SSL-VPN";

/// A certificate and its private key, both PEM.
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: Secret,
}

fn pki_error(e: rcgen::Error) -> ApiError {
    ApiError::internal(format!("certificate authority: {e}"))
}

fn subject(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, ORGANIZATION);
    dn.push(DnType::CommonName, common_name);
    dn
}

fn time_of(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000)).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// A new CA named after the SSL-VPN server, valid from `now_ms`.
pub fn new_ca(server_id: &str, now_ms: i64) -> ApiResult<Issued> {
    let key = KeyPair::generate().map_err(pki_error)?;
    let mut params = CertificateParams::default();
    params.distinguished_name = subject(&format!("{server_id} CA"));
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    params.serial_number = Some(SerialNumber::from(1u64));
    params.not_before = time_of(now_ms) - Duration::minutes(5);
    params.not_after = time_of(now_ms) + Duration::days(CA_DAYS);
    params.key_identifier_method = KeyIdMethod::Sha256;
    let cert = params.self_signed(&key).map_err(pki_error)?;
    Ok(Issued { cert_pem: cert.pem(), key_pem: Secret::new(key.serialize_pem()) })
}

/// The CA as an issuer: its stored certificate's parameters, signed again by its key (issuing
/// needs only its name and key identifier, which this reproduces exactly).
fn issuer(ca_pem: &str, ca_key: &Secret) -> ApiResult<(Certificate, KeyPair)> {
    let key = KeyPair::from_pem(ca_key.expose()).map_err(pki_error)?;
    let mut params = CertificateParams::from_ca_cert_pem(ca_pem).map_err(pki_error)?;
    params.key_identifier_method = KeyIdMethod::Sha256;
    let cert = params.self_signed(&key).map_err(pki_error)?;
    Ok((cert, key))
}

/// What an end-entity certificate is for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Role {
    Server,
    Client,
}

/// A certificate for `common_name` with serial `serial`, signed by the CA, valid `days` from
/// `now_ms`.
pub fn issue(
    ca_pem: &str,
    ca_key: &Secret,
    role: Role,
    common_name: &str,
    serial: u64,
    now_ms: i64,
    days: i64,
) -> ApiResult<Issued> {
    let (ca, ca_key) = issuer(ca_pem, ca_key)?;
    let key = KeyPair::generate().map_err(pki_error)?;
    let mut params = CertificateParams::default();
    params.distinguished_name = subject(common_name);
    params.is_ca = IsCa::ExplicitNoCa;
    params.serial_number = Some(SerialNumber::from(serial));
    params.not_before = time_of(now_ms) - Duration::minutes(5);
    params.not_after = time_of(now_ms) + Duration::days(days);
    params.use_authority_key_identifier_extension = true;
    params.key_identifier_method = KeyIdMethod::Sha256;
    let (usages, purpose) = match role {
        Role::Server => (
            vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment, KeyUsagePurpose::KeyAgreement],
            ExtendedKeyUsagePurpose::ServerAuth,
        ),
        Role::Client => (
            vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyAgreement],
            ExtendedKeyUsagePurpose::ClientAuth,
        ),
    };
    params.key_usages = usages;
    params.extended_key_usages = vec![purpose];
    let cert = params.signed_by(&key, &ca, &ca_key).map_err(pki_error)?;
    Ok(Issued { cert_pem: cert.pem(), key_pem: Secret::new(key.serialize_pem()) })
}

/// One revoked certificate: its id (the CN), its serial and when it was revoked.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Revoked {
    pub id: String,
    pub serial: u64,
    pub revoked_ms: i64,
}

/// The CA's revocation list (number `number`), valid for the CA's lifetime: nothing else
/// reissues it, so it must not lapse while the CA lives.
pub fn crl(ca_pem: &str, ca_key: &Secret, number: u64, revoked: &[Revoked], now_ms: i64) -> ApiResult<String> {
    let (ca, ca_key) = issuer(ca_pem, ca_key)?;
    let params = CertificateRevocationListParams {
        this_update: time_of(now_ms),
        next_update: ca.params().not_after.max(time_of(now_ms) + Duration::days(1)),
        crl_number: SerialNumber::from(number),
        issuing_distribution_point: None,
        revoked_certs: revoked
            .iter()
            .map(|r| RevokedCertParams {
                serial_number: SerialNumber::from(r.serial),
                revocation_time: time_of(r.revoked_ms),
                reason_code: Some(RevocationReason::CessationOfOperation),
                invalidity_date: None,
            })
            .collect(),
        key_identifier_method: KeyIdMethod::Sha256,
    };
    params.signed_by(&ca, &ca_key).map_err(pki_error)?.pem().map_err(pki_error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use x509_parser::prelude::*;

    fn parse(pem: &str) -> Vec<u8> {
        ::pem::parse(pem).expect("pem").into_contents()
    }

    #[test]
    fn a_client_certificate_chains_to_its_ca_with_the_right_usages() {
        let now = 1_700_000_000_000;
        let ca = new_ca("vss-test", now).unwrap();
        let client = issue(&ca.cert_pem, &ca.key_pem, Role::Client, "vsc-one", 7, now, CLIENT_DAYS).unwrap();
        let (ca_der, client_der) = (parse(&ca.cert_pem), parse(&client.cert_pem));
        let (_, ca_x) = X509Certificate::from_der(&ca_der).unwrap();
        let (_, c) = X509Certificate::from_der(&client_der).unwrap();
        assert!(ca_x.is_ca());
        assert_eq!(c.issuer(), ca_x.subject());
        c.verify_signature(Some(ca_x.public_key())).expect("signed by the CA");
        assert_eq!(c.serial.to_string(), "7");
        let eku = c.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.client_auth && !eku.server_auth);
        assert!(c.subject().to_string().contains("CN=vsc-one"));
        assert_eq!(c.validity().not_after.timestamp() - now / 1000, CLIENT_DAYS * 86400);
        // The private key is the certificate's.
        let key = KeyPair::from_pem(client.key_pem.expose()).unwrap();
        assert_eq!(key.public_key_raw(), c.public_key().subject_public_key.data.as_ref());
    }

    #[test]
    fn the_crl_lists_revoked_serials_and_is_signed_by_the_ca() {
        let now = 1_700_000_000_000;
        let ca = new_ca("vss-test", now).unwrap();
        let pem = crl(&ca.cert_pem, &ca.key_pem, 2, &[Revoked { id: "vsc-x".into(), serial: 3, revoked_ms: now }], now)
            .unwrap();
        let der = parse(&pem);
        let (_, list) = CertificateRevocationList::from_der(&der).unwrap();
        let serials: Vec<String> = list.iter_revoked_certificates().map(|r| r.raw_serial_as_string()).collect();
        assert_eq!(serials, vec!["03"]);
        let ca_der = parse(&ca.cert_pem);
        let (_, ca_x) = X509Certificate::from_der(&ca_der).unwrap();
        list.verify_signature(ca_x.public_key()).expect("signed by the CA");
    }
}
