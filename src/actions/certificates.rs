//! Certificates of national-standard (SM) gateways: AssociateVpnGatewayWithCertificate,
//! DissociateVpnGatewayWithCertificate, ListVpnCertificateAssociations.
//!
//! The real service takes these certificates from its certificate service. Here an operator
//! registers them with `gatehouse certificates add` (`register`): a PEM certificate becomes a
//! `VpnCertificate` with an id the API then takes as `CertificateId`. A gateway holds at most one
//! certificate of each type (Signature, Encryption); associating another of a type replaces it.
//! A national-standard gateway without any certificate cannot take IPsec connections
//! (`OperationFailed.MissCertificate`, `require_certificates`).

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::rules::{iso_time, token_body};
use super::vpn_gateways::{self, VpnGateway};
use crate::api::error::{ApiError, ApiResult};
use crate::app::{Body, Ctx};
use crate::store::{now_ms, ListQuery, Resource, Tx, TxExt};

crate::wire_enum!(
    /// What a gateway uses a certificate for (`CertificateType`).
    CertificateType {
        #[default]
        Signature = "Signature",
        Encryption = "Encryption",
    }
);

/// A certificate registered for the account's national-standard gateways.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VpnCertificate {
    pub id: String,
    pub account_id: i64,
    pub region_id: String,
    pub name: String,
    /// The certificate, PEM.
    pub pem: String,
    pub created_ms: i64,
}

crate::resource!(VpnCertificate, "VpnCertificate", {
    fn name(&self) -> &str {
        &self.name
    }
});

/// One certificate bound to one gateway for one use; its id is `<gateway>/<type>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VpnCertificateAssociation {
    pub id: String,
    pub account_id: i64,
    pub region_id: String,
    pub vpn_gateway_id: String,
    pub certificate_type: CertificateType,
    pub certificate_id: String,
    pub created_ms: i64,
}

crate::resource!(VpnCertificateAssociation, "VpnCertificateAssociation", {
    fn parent_id(&self) -> Option<&str> {
        Some(&self.vpn_gateway_id)
    }
    /// Lists find the associations of a certificate by it.
    fn refs(&self) -> Vec<String> {
        vec![format!("cert:{}", self.certificate_id)]
    }
});

impl VpnCertificateAssociation {
    fn describe(&self) -> Value {
        json!({
            "VpnGatewayId": self.vpn_gateway_id,
            "CertificateType": self.certificate_type.wire(),
            "CertificateId": self.certificate_id,
            "AssociationTime": iso_time(self.created_ms),
            "RegionId": self.region_id,
        })
    }
}

/// Registers a PEM certificate for `account_id` in `region`; returns it (its id is what the API
/// takes as CertificateId). The PEM must hold exactly one X.509 certificate.
pub fn register(tx: &mut dyn Tx, account_id: i64, region: &str, name: &str, pem: &str) -> ApiResult<VpnCertificate> {
    let blocks = ::pem::parse_many(pem).map_err(|e| ApiError::invalid_parameter("Certificate", e))?;
    let [block] = blocks.as_slice() else {
        return Err(ApiError::invalid_parameter("Certificate", "give exactly one PEM certificate"));
    };
    if block.tag() != "CERTIFICATE" {
        return Err(ApiError::invalid_parameter("Certificate", format!("a {} is not a certificate", block.tag())));
    }
    x509_parser::parse_x509_certificate(block.contents())
        .map_err(|e| ApiError::invalid_parameter("Certificate", format!("not an X.509 certificate: {e}")))?;
    let cert = VpnCertificate {
        id: uuid::Uuid::new_v4().to_string(),
        account_id,
        region_id: region.to_string(),
        name: name.to_string(),
        pem: ::pem::encode(block),
        created_ms: now_ms(),
    };
    tx.insert_as(&cert)?;
    Ok(cert)
}

/// The account's registered certificates.
pub fn registered(tx: &dyn Tx, account_id: i64) -> ApiResult<Vec<VpnCertificate>> {
    tx.list_as(&ListQuery { kind: VpnCertificate::KIND, account_id, ..Default::default() })
}

fn associations_of(tx: &dyn Tx, gw: &VpnGateway) -> ApiResult<Vec<VpnCertificateAssociation>> {
    tx.children_as(gw.account_id, &gw.id)
}

/// Drops a deleted gateway's associations.
pub fn forget_gateway(tx: &mut dyn Tx, gw: &VpnGateway) -> ApiResult<()> {
    for a in associations_of(tx, gw)? {
        tx.delete(VpnCertificateAssociation::KIND, gw.account_id, &a.id)?;
    }
    Ok(())
}

/// A national-standard gateway negotiates with its certificates: without any, no connection.
pub fn require_certificates(tx: &dyn Tx, gw: &VpnGateway) -> ApiResult<()> {
    if gw.vpn_type == "NationalStandard" && associations_of(tx, gw)?.is_empty() {
        return Err(ApiError::bad_request(
            "OperationFailed.MissCertificate",
            "The VPN gateway has not associated any certificates.",
        ));
    }
    Ok(())
}

/// The request both association actions take.
struct Association {
    gateway_id: String,
    kind: CertificateType,
    certificate_id: String,
    dry_run: bool,
}

fn association(ctx: &Ctx) -> ApiResult<Association> {
    let p = &ctx.params;
    let gateway_id = p.required("VpnGatewayId")?;
    let kind = p.required("CertificateType")?;
    let kind = p
        .enumeration("CertificateType", CertificateType::NAMES)?
        .and_then(CertificateType::from_wire)
        .ok_or_else(|| ApiError::invalid_parameter("CertificateType", format!("{kind:?}")))?;
    Ok(Association {
        gateway_id,
        kind,
        certificate_id: p.required("CertificateId")?,
        dry_run: p.bool("DryRun")?.unwrap_or(false),
    })
}

pub async fn associate(ctx: Ctx) -> ApiResult<Body> {
    let region = ctx.region()?;
    let a = association(&ctx)?;
    let account_id = ctx.account_id;
    ctx.write_once(move |tx| {
        let gw = vpn_gateways::find(tx, account_id, &region.id, &a.gateway_id, 404)?;
        if gw.vpn_type != "NationalStandard" {
            return Err(ApiError::bad_request(
                "OperationUnsupported.VpnType",
                "Only national-standard (NationalStandard) VPN gateways take certificates.",
            ));
        }
        let cert = tx.get_in::<VpnCertificate>(account_id, &region.id, &a.certificate_id)?;
        if cert.is_none() {
            return Err(ApiError::not_found(
                "InvalidCertificateId.NotFound",
                "The specified certificate does not exist.",
            ));
        }
        gw.ensure_active()?;
        if a.dry_run {
            return Ok(Body::new());
        }
        let id = format!("{}/{}", gw.id, a.kind.wire());
        let association = VpnCertificateAssociation {
            id: id.clone(),
            account_id,
            region_id: region.id.clone(),
            vpn_gateway_id: gw.id.clone(),
            certificate_type: a.kind,
            certificate_id: a.certificate_id.clone(),
            created_ms: now_ms(),
        };
        match tx.get_as::<VpnCertificateAssociation>(account_id, &id)? {
            Some(old) if old.certificate_id == association.certificate_id => {}
            Some(_) => tx.update_as(&association)?,
            None => tx.insert_as(&association)?,
        }
        Ok(Body::new())
    })
    .await
}

pub async fn dissociate(ctx: Ctx) -> ApiResult<Body> {
    let region = ctx.region()?;
    let a = association(&ctx)?;
    let account_id = ctx.account_id;
    ctx.write_once(move |tx| {
        let gw = vpn_gateways::find(tx, account_id, &region.id, &a.gateway_id, 404)?;
        gw.ensure_active()?;
        let id = format!("{}/{}", gw.id, a.kind.wire());
        let bound = tx.get_as::<VpnCertificateAssociation>(account_id, &id)?;
        // Not associated (any more): nothing to do, as a retried request expects.
        if a.dry_run || bound.is_none_or(|b| b.certificate_id != a.certificate_id) {
            return Ok(Body::new());
        }
        tx.delete(VpnCertificateAssociation::KIND, account_id, &id)?;
        Ok(Body::new())
    })
    .await
}

pub async fn list(ctx: Ctx) -> ApiResult<Body> {
    let region = ctx.region()?;
    let p = &ctx.params;
    let page = p.token_page(20)?;
    let kind = p.enumeration("CertificateType", CertificateType::NAMES)?.and_then(CertificateType::from_wire);
    // The SDKs send these as lists (`VpnGatewayId.1`); a plain value is taken too.
    let either = |name: &str| -> ApiResult<Vec<String>> {
        let mut values = p.list(name, 20)?;
        values.extend(p.str(name));
        Ok(values)
    };
    let (gateways, certs) = (either("VpnGatewayId")?, either("CertificateId")?);
    let query = ListQuery {
        kind: VpnCertificateAssociation::KIND,
        account_id: ctx.account_id,
        region_id: Some(region.id),
        refers_to: certs.iter().map(|c| format!("cert:{c}")).collect(),
        ..Default::default()
    };
    ctx.store().read(|tx| {
        let mut all: Vec<VpnCertificateAssociation> = tx.list_as(&query)?;
        all.retain(|a| kind.is_none_or(|k| a.certificate_type == k));
        all.retain(|a| gateways.is_empty() || gateways.contains(&a.vpn_gateway_id));
        // Newest first, as the real service lists them.
        all.sort_by(|a, b| b.created_ms.cmp(&a.created_ms).then_with(|| a.id.cmp(&b.id)));
        let items = all.iter().skip(page.offset).take(page.max).map(|a| a.describe()).collect();
        Ok(token_body(all.len(), page, "VpnCertificateRelations", items))
    })
}
