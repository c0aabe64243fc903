//! The committed CRD YAML under crds/ is exactly what the Rust types generate.

#[test]
fn committed_crds_match_the_rust_types() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("crds");
    for crd in driftwatch::crd::all() {
        let name = driftwatch::crd::file_name(&crd);
        let committed = std::fs::read_to_string(root.join(&name)).unwrap_or_else(|e| {
            panic!("crds/{name} is missing ({e}); run `driftwatch crd --output-dir crds`")
        });
        let generated = driftwatch::crd::to_yaml(&crd).unwrap();
        assert!(
            committed == generated,
            "crds/{name} is stale: regenerate with `cargo run -- crd --output-dir crds`"
        );
    }
}
