//! The seed's whole customer-managed-key procedure through Azure's own SDKs
//! (`tests/clients/seed_procedure.py`), once on the test clock and once with cluster operations
//! that take seconds on the system clock and lists one item per page (the SDK's poller and
//! pager at work); then what the CLI's library sees of it. And every error the seed lists, as
//! the SDKs raise them (`tests/clients/seed_errors.py`).

use logvault::control::ProvisioningState;
use logvault_server::Role;

use crate::clients::{python_with, run_python};
use crate::common::{Options, serve};

const SUB: &str = "local";
const RG: &str = "local";
const SEED_WS: &str = "seed-ws";

async fn seed_procedure(test: &str, options: Options, slow: bool) {
    let Some(python) = python_with(
        "sdk",
        "azure.mgmt.loganalytics, azure.mgmt.keyvault, azure.keyvault.keys, azure.monitor.query, azure.monitor.ingestion",
        test,
    ) else {
        return;
    };
    let page = options.page_size.unwrap_or(100);
    let s = serve(options).await;
    let env = vec![
        ("LV_URL", s.url.clone()),
        ("LV_CERT", s.server().cert().unwrap().display().to_string()),
        ("LV_OWNER", s.owner()),
        ("LV_CRYPTO", s.token(&[Role::CryptoOfficer], None)),
        ("LV_PUBLISHER", s.token(&[Role::Publisher], None)),
        ("LV_READER", s.token(&[Role::Reader], None)),
        ("LV_SUB", SUB.to_owned()),
        ("LV_RG", RG.to_owned()),
        ("LV_WORKSPACE", SEED_WS.to_owned()),
        ("LV_NOW", s.now().to_rfc3339()),
        ("LV_SLOW", if slow { "1" } else { "0" }.to_owned()),
        ("LV_PAGE", page.to_string()),
    ];
    let stdout =
        tokio::task::spawn_blocking(move || run_python(&python, "seed_procedure.py", &env))
            .await
            .unwrap();
    assert!(stdout.contains("SEED PROCEDURE OK"), "{stdout}");
    // `vault show`'s `vaultUri` is the URI the script's KeyClient was given (the management
    // API's `vaultUri`): where this server, recorded at start, serves the vault's keys.
    assert_eq!(
        logvault_server::served_vault_uri(s.dir.path(), "seedkv"),
        format!("{}/vaults/seedkv/", s.url)
    );
    // What the CLI sees: the same vault, key versions, workspace and deleted cluster.
    let key = s.engine.vault().key_properties("seedkv", "cmk").unwrap();
    assert_eq!(key.versions.len(), 3);
    assert!(key.enabled);
    let ws = s.engine.control().get_workspace(SEED_WS).unwrap();
    assert_eq!(ws.cluster, None);
    let deleted = s.engine.control().list_deleted_clusters().unwrap();
    assert_eq!(
        deleted.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
        vec!["seed-cluster"]
    );
    assert_eq!(deleted[0].state, ProvisioningState::Deleted);
    // The rule it made is the one `logvault dcr list` shows.
    let rule = logvault_server::RuleStore::new(s.dir.path())
        .get("seed-rule")
        .unwrap();
    assert_eq!(
        (rule.workspace.as_str(), rule.data_flows[0].table.as_str()),
        (SEED_WS, "SeedEvents")
    );
    // Every row the script got acknowledged is there, under both keys.
    assert_eq!(s.count(SEED_WS, "SeedEvents").await, 10 + 5 + 4 + 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_sdks_run_the_seed_procedure() {
    seed_procedure("seed_procedure", Options::default(), false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_sdks_run_the_seed_procedure_with_slow_operations_and_small_pages() {
    let options = Options {
        slow_operations: Some(2),
        page_size: Some(1),
        ..Options::default()
    };
    seed_procedure("seed_procedure_slow", options, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_sdks_raise_the_seed_errors() {
    let Some(python) = python_with(
        "sdk",
        "azure.mgmt.loganalytics, azure.mgmt.keyvault, azure.keyvault.keys",
        "seed_errors",
    ) else {
        return;
    };
    let s = serve(Options {
        slow_operations: Some(2),
        ..Options::default()
    })
    .await;
    let env = vec![
        ("LV_URL", s.url.clone()),
        ("LV_CERT", s.server().cert().unwrap().display().to_string()),
        ("LV_OWNER", s.owner()),
        ("LV_CRYPTO", s.token(&[Role::CryptoOfficer], None)),
        ("LV_SUB", SUB.to_owned()),
        ("LV_RG", RG.to_owned()),
    ];
    let stdout = tokio::task::spawn_blocking(move || run_python(&python, "seed_errors.py", &env))
        .await
        .unwrap();
    assert!(stdout.contains("SEED ERRORS OK"), "{stdout}");
    // The refused updates changed nothing the CLI sees: err-a is on goodkv/cmk, unlinked.
    let a = s.engine.control().get_cluster("err-a").unwrap();
    assert_eq!(a.key.as_ref().map(|k| k.key_name.as_str()), Some("cmk"));
    assert_eq!(a.sku_capacity, 500);
    assert_eq!(
        s.engine.control().get_workspace("err-ws").unwrap().cluster,
        None
    );
    assert!(
        s.engine
            .vault()
            .key_properties("goodkv", "cmk2")
            .unwrap()
            .deleted
            .is_none()
    );
}
