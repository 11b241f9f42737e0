//! The Key Vault keys API over plain HTTPS requests: the 401 challenge, key bundles with the
//! real RSA public key, wrap at a key id's root and unwrap under the vault's URI, oct keys,
//! list paging, roles, soft delete and purge; checked against the CLI's library.

use logvault_server::Role;
use serde_json::{Value, json};

use crate::common::{Options, serve};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_vault_challenges_then_serves_keys_with_the_real_public_key() {
    let s = serve(Options::default()).await;
    s.engine
        .vault()
        .create_vault("kv-http", &Default::default())
        .unwrap();
    let base = format!("{}/vaults/kv-http", s.url);
    // The client's first request has no token: Key Vault's challenge.
    let response = s
        .client
        .post(format!("{base}/keys/k1/create?api-version=2025-07-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
    let challenge = response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge.contains("resource=\"https://vault.azure.net\""),
        "{challenge}"
    );
    assert!(
        challenge.contains("authorization=\"https://login.microsoftonline.com/"),
        "{challenge}"
    );
    // A Crypto Officer creates an RSA key: the bundle carries n and e.
    let officer = s.token(&[Role::CryptoOfficer], None);
    let response = s
        .client
        .post(format!("{base}/keys/k1/create?api-version=2025-07-01"))
        .bearer_auth(&officer)
        .json(&json!({"kty": "RSA", "key_size": 2048}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let bundle: Value = response.json().await.unwrap();
    let n = bundle["key"]["n"].as_str().unwrap();
    assert_eq!(n.len(), 342, "256 bytes of base64url");
    assert_eq!(bundle["key"]["e"], "AQAB");
    let kid = bundle["key"]["kid"].as_str().unwrap();
    let version = kid.rsplit('/').next().unwrap();
    assert_eq!(kid, format!("{}/keys/k1/{version}", s.url));
    // The CLI's view of the same key.
    let props = s.engine.vault().key_properties("kv-http", "k1").unwrap();
    assert_eq!(props.version, version);
    // Wrap at the key id's root and unwrap through the vault's URI.
    let secret = "c2VjcmV0LWJ5dGVzLW9mLWEtZGF0YS1rZXk";
    let response = s
        .client
        .post(format!("{kid}/wrapkey?api-version=2025-07-01"))
        .bearer_auth(&officer)
        .json(&json!({"alg": "RSA-OAEP-256", "value": secret}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let wrapped: Value = response.json().await.unwrap();
    let response = s
        .client
        .post(format!(
            "{base}/keys/k1/{version}/unwrapkey?api-version=2025-07-01"
        ))
        .bearer_auth(&officer)
        .json(&json!({"alg": "RSA-OAEP-256", "value": wrapped["value"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let unwrapped: Value = response.json().await.unwrap();
    assert_eq!(unwrapped["value"], secret);
    // An oct-HSM key has no public half; lists page through nextLink.
    let response = s
        .client
        .post(format!("{base}/keys/k2/create?api-version=2025-07-01"))
        .bearer_auth(&officer)
        .json(&json!({"kty": "oct-HSM", "key_size": 256}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let oct: Value = response.json().await.unwrap();
    assert_eq!(oct["key"]["kty"], "oct");
    assert!(oct["key"].get("n").is_none(), "{oct}");
    let mut next = Some(format!("{base}/keys?api-version=2025-07-01&maxresults=1"));
    let mut kids = Vec::new();
    while let Some(url) = next {
        let page: Value = s
            .client
            .get(url)
            .bearer_auth(&officer)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for item in page["value"].as_array().unwrap_or_else(|| panic!("{page}")) {
            kids.push(item["kid"].as_str().unwrap().to_owned());
        }
        next = page["nextLink"].as_str().map(str::to_owned);
    }
    assert_eq!(
        kids,
        vec![format!("{}/keys/k1", s.url), format!("{}/keys/k2", s.url)]
    );
    // An encryption user may wrap but not manage; a Log Analytics reader may do neither.
    let user = s.token(&[Role::CryptoServiceEncryptionUser], None);
    let response = s
        .client
        .post(format!("{base}/keys/k1/rotate?api-version=2025-07-01"))
        .bearer_auth(&user)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 403);
    let response = s
        .client
        .get(format!("{base}/keys/k1?api-version=2025-07-01"))
        .bearer_auth(s.token(&[Role::Reader], None))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 403);
    // Soft delete without purge protection (the default vault): delete, then purge works;
    // a missing key is 404 KeyNotFound.
    let response = s
        .client
        .delete(format!("{base}/keys/k1?api-version=2025-07-01"))
        .bearer_auth(&officer)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let deleted: Value = response.json().await.unwrap();
    assert!(
        deleted["recoveryId"]
            .as_str()
            .unwrap()
            .ends_with("/deletedkeys/k1")
    );
    let response = s
        .client
        .get(format!("{base}/keys/k1?api-version=2025-07-01"))
        .bearer_auth(&officer)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 404);
    let err: Value = response.json().await.unwrap();
    assert_eq!(err["error"]["code"], "KeyNotFound");
    let response = s
        .client
        .delete(format!("{base}/deletedkeys/k1?api-version=2025-07-01"))
        .bearer_auth(&officer)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 204);
    assert!(s.engine.vault().key_properties("kv-http", "k1").is_err());
}
