//! A Qdrant stand-in for tests: qdrant-client's generated gRPC server traits (`Points`, `Collections`,
//! `Qdrant`) over in-memory points, on a local TCP port. Network I/O (it is a server).
//!
//! Implemented with Qdrant's semantics for the calls driftwatch makes: collection create / info / exists /
//! list / delete (single or named dense vectors, dimension checked on upsert; cosine-distance vectors are
//! normalized on upsert as Qdrant does), upsert, scroll (ascending
//! point id, `offset` inclusive, `next_page_offset` = first id of the next page, payload and vector
//! selectors), exact count, and filters (`must`, `must_not`, `should`, nested filters; field conditions
//! `match` keyword/integer/boolean/keywords, numeric `range`, `datetime_range` on RFC 3339 text,
//! `is_empty`, `has_id`; array values match when any element does; dotted keys), and the Query API's
//! random sample (`query: sample: random`) as Qdrant 1.19 does it (`lib/collection/src/shards/local_shard/
//! scroll.rs`, `scroll_randomly`): `limit` (default 10, at least 1) points drawn without replacement from
//! the points that match the filter (the filter is applied before sampling), `offset` ignored, payload and
//! vector selectors as for scroll (a point without the selected vector comes back without it), score 1,
//! in no particular order. Points live in segments (one by default; `set_segment_points` cuts them into
//! segments of that many points in insertion order, as Qdrant's appendable segments fill up): each segment
//! draws up to `limit` of its matching points uniformly, and the answer picks from the segments with
//! weights proportional to each segment's *total* point count — not its matching count — until a picked
//! segment runs out, then fills up from the others in segment order. With an API key set, every call must
//! carry it in the `api-key` metadata (else `PermissionDenied`). Knobs for failure tests: a delay before
//! every answer, and a number of calls to fail with `Unavailable`.
//!
//! A numeric payload index (`create_field_index`, or `index_field`) narrows a filter as Qdrant's does: a
//! `must` range on an indexed field (or a `must` filter of only such ranges in `should`) picks the
//! candidate points from the sorted index, and the whole filter is still checked on each of them, so
//! answers are the same with or without the index; only the work differs (unindexed filters scan every
//! point).
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use ::qdrant_client::qdrant::collections_server::{Collections, CollectionsServer};
use ::qdrant_client::qdrant::condition::ConditionOneOf;
use ::qdrant_client::qdrant::r#match::MatchValue;
use ::qdrant_client::qdrant::points_server::{Points, PointsServer};
use ::qdrant_client::qdrant::qdrant_server::{Qdrant, QdrantServer};
use ::qdrant_client::qdrant::value::Kind;
use ::qdrant_client::qdrant::vectors_config::Config as VectorsConfigKind;
use ::qdrant_client::qdrant::vectors_output::VectorsOptions as OutOptions;
use ::qdrant_client::qdrant::with_payload_selector::SelectorOptions as PayloadSel;
use ::qdrant_client::qdrant::with_vectors_selector::SelectorOptions as VectorSel;
use ::qdrant_client::qdrant::*;
use tokio::sync::oneshot;
use tonic::{Request, Response, Status};

/// Point ids in Qdrant's order: numbers before UUIDs.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Key {
    Num(u64),
    Uuid(String),
}

impl Key {
    fn from_proto(id: &PointId) -> Result<Key, Status> {
        match &id.point_id_options {
            Some(point_id::PointIdOptions::Num(n)) => Ok(Key::Num(*n)),
            Some(point_id::PointIdOptions::Uuid(u)) => Ok(Key::Uuid(u.to_ascii_lowercase())),
            None => Err(Status::invalid_argument("Wrong input: point id is empty")),
        }
    }

    fn to_proto(&self) -> PointId {
        match self {
            Key::Num(n) => PointId::from(*n),
            Key::Uuid(u) => PointId::from(u.clone()),
        }
    }
}

/// One stored point: dense vectors by name ("" for the unnamed vector) and a JSON payload.
#[derive(Clone, Debug)]
pub struct TestPoint {
    pub id: u64,
    pub vectors: HashMap<String, Vec<f32>>,
    pub payload: serde_json::Map<String, serde_json::Value>,
}

impl TestPoint {
    /// A point with the unnamed vector.
    pub fn new(id: u64, vector: Vec<f32>, payload: serde_json::Value) -> Self {
        Self::named(id, "", vector, payload)
    }

    /// A point with one named vector.
    pub fn named(id: u64, name: &str, vector: Vec<f32>, payload: serde_json::Value) -> Self {
        let payload = match payload {
            serde_json::Value::Object(map) => map,
            _ => serde_json::Map::new(),
        };
        Self {
            id,
            vectors: HashMap::from([(name.to_string(), vector)]),
            payload,
        }
    }
}

/// Vector parameters of a collection: one unnamed vector, or named ones.
#[derive(Clone, Debug)]
pub enum VectorShape {
    Single(u64),
    Named(Vec<(String, u64)>),
}

struct Collection {
    shape: VectorShape,
    /// Vector names ("" for the unnamed one) with cosine distance: Qdrant normalizes those on upsert.
    cosine: Vec<String>,
    points: BTreeMap<Key, Stored>,
    /// Points written so far (the next point's sequence number).
    written: u64,
    /// Payload fields with a numeric index.
    indexed: HashSet<String>,
    /// The indexes built so far: (value, point) sorted by value; dropped on every write.
    indexes: std::sync::Mutex<HashMap<String, Arc<Index>>>,
}

/// A numeric payload index: (value, point) sorted by value; a point appears once per numeric value.
type Index = Vec<(f64, Key)>;

impl Collection {
    fn new(shape: VectorShape, cosine: Vec<String>) -> Self {
        Self {
            shape,
            cosine,
            points: BTreeMap::new(),
            written: 0,
            indexed: HashSet::new(),
            indexes: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// The numeric index of a field, built on first use after a write; `None` if the field has none.
    fn index(&self, field: &str) -> Option<Arc<Index>> {
        if !self.indexed.contains(field) {
            return None;
        }
        let mut indexes = self.indexes.lock().expect("lock");
        let index = indexes.entry(field.to_string()).or_insert_with(|| {
            let mut entries = Vec::new();
            for (key, stored) in &self.points {
                for v in values_at(&stored.payload, field) {
                    match v.kind.as_ref() {
                        Some(Kind::DoubleValue(d)) => entries.push((*d, key.clone())),
                        Some(Kind::IntegerValue(i)) => entries.push((*i as f64, key.clone())),
                        _ => {}
                    }
                }
            }
            entries.sort_by(|a, b| a.0.total_cmp(&b.0));
            Arc::new(entries)
        });
        Some(index.clone())
    }

    /// The points an indexed numeric range admits, in id order (a superset of the condition's points).
    fn range_keys(&self, field: &FieldCondition) -> Option<Vec<Key>> {
        let range = field.range.as_ref().filter(|_| field.r#match.is_none())?;
        let index = self.index(&field.key)?;
        let low = range
            .gte
            .into_iter()
            .chain(range.gt)
            .fold(f64::NEG_INFINITY, f64::max);
        let high = range
            .lte
            .into_iter()
            .chain(range.lt)
            .fold(f64::INFINITY, f64::min);
        let from = index.partition_point(|(v, _)| *v < low);
        let to = index.partition_point(|(v, _)| *v <= high).max(from);
        let mut keys: Vec<Key> = index[from..to].iter().map(|(_, k)| k.clone()).collect();
        keys.sort();
        keys.dedup();
        Some(keys)
    }

    /// The candidates of a filter, in id order, when an indexed range narrows it (`None`: every point).
    fn candidates(&self, filter: Option<&Filter>) -> Option<Vec<Key>> {
        let mut best: Option<Vec<Key>> = None;
        for condition in &filter?.must {
            let keys = match condition.condition_one_of.as_ref() {
                Some(ConditionOneOf::Field(field)) => self.range_keys(field),
                Some(ConditionOneOf::Filter(inner))
                    if inner.must.is_empty()
                        && inner.must_not.is_empty()
                        && inner.min_should.is_none()
                        && !inner.should.is_empty() =>
                {
                    inner
                        .should
                        .iter()
                        .map(|c| match c.condition_one_of.as_ref() {
                            Some(ConditionOneOf::Field(field)) => self.range_keys(field),
                            _ => None,
                        })
                        .collect::<Option<Vec<Vec<Key>>>>()
                        .map(|parts| {
                            let mut keys: Vec<Key> = parts.into_iter().flatten().collect();
                            keys.sort();
                            keys.dedup();
                            keys
                        })
                }
                _ => None,
            };
            if let Some(keys) = keys
                && best.as_ref().is_none_or(|b| keys.len() < b.len())
            {
                best = Some(keys);
            }
        }
        best
    }

    /// The points from `start` on (in id order) that may match `filter`: the index's candidates when
    /// one narrows it, else every point. Callers still check the filter.
    fn scan<'a>(
        &'a self,
        filter: Option<&Filter>,
        start: std::ops::Bound<Key>,
    ) -> Box<dyn Iterator<Item = (&'a Key, &'a Stored)> + Send + 'a> {
        match self.candidates(filter) {
            Some(keys) => {
                let from = match &start {
                    std::ops::Bound::Included(k) => keys.partition_point(|x| x < k),
                    _ => 0,
                };
                Box::new(
                    keys.into_iter()
                        .skip(from)
                        .filter_map(move |k| self.points.get_key_value(&k)),
                )
            }
            None => Box::new(self.points.range((start, std::ops::Bound::Unbounded))),
        }
    }

    /// Stores a point; a new or rewritten point goes to the newest segment, as in Qdrant.
    fn store(&mut self, key: Key, vectors: HashMap<String, Vec<f32>>, payload: HashMap<String, Value>) {
        let seq = self.written;
        self.written += 1;
        self.indexes.get_mut().expect("lock").clear();
        self.points.insert(
            key,
            Stored {
                vectors,
                payload,
                seq,
            },
        );
    }
}

#[derive(Clone)]
struct Stored {
    vectors: HashMap<String, Vec<f32>>,
    payload: HashMap<String, Value>,
    /// Write order: which segment the point lives in.
    seq: u64,
}

#[derive(Default)]
struct State {
    collections: RwLock<HashMap<String, Collection>>,
    delay_ms: AtomicU64,
    fail_next: AtomicU32,
    calls: AtomicU64,
    /// Points per segment (0: one segment).
    segment_points: AtomicU64,
    /// Calls by method name.
    by_method: std::sync::Mutex<HashMap<&'static str, u64>>,
    /// Calls in their delay right now, and the most seen at once.
    delayed: AtomicU64,
    most_delayed: AtomicU64,
}

/// A running test server; stops when dropped.
pub struct TestQdrant {
    pub url: String,
    pub addr: SocketAddr,
    state: Arc<State>,
    shutdown: Option<oneshot::Sender<()>>,
}

impl TestQdrant {
    /// Starts a server without an API key.
    pub async fn start() -> Self {
        Self::start_with_key(None).await
    }

    /// Starts a server; with `api_key`, calls must send it in the `api-key` metadata.
    pub async fn start_with_key(api_key: Option<&str>) -> Self {
        Self::start_on("127.0.0.1:0", api_key).await
    }

    /// Starts a server on `listen` (e.g. `0.0.0.0:6334` inside a Pod).
    pub async fn start_on(listen: &str, api_key: Option<&str>) -> Self {
        let listener = tokio::net::TcpListener::bind(listen).await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let state = Arc::new(State::default());
        let service = Service { state: state.clone() };
        let key = api_key.map(str::to_string);
        let check = move |request: Request<()>| -> Result<Request<()>, Status> {
            let Some(expected) = &key else {
                return Ok(request);
            };
            match request.metadata().get("api-key").and_then(|v| v.to_str().ok()) {
                Some(given) if given == expected => Ok(request),
                Some(_) => Err(Status::permission_denied("Invalid api-key")),
                None => Err(Status::permission_denied(
                    "Must provide an API key or an Authorization bearer token",
                )),
            }
        };
        let (tx, rx) = oneshot::channel::<()>();
        let points = tonic::service::interceptor::InterceptedService::new(
            PointsServer::new(service.clone())
                .max_decoding_message_size(usize::MAX)
                .max_encoding_message_size(usize::MAX),
            check.clone(),
        );
        let collections = CollectionsServer::with_interceptor(service.clone(), check.clone());
        let qdrant = QdrantServer::with_interceptor(service, check);
        tokio::spawn(async move {
            // TCP_NODELAY on accepted connections, as Qdrant's own gRPC server has (tonic's default):
            // without it Nagle's algorithm holds back the last frames of every answer.
            let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
            let _ = tonic::transport::Server::builder()
                .add_service(points)
                .add_service(collections)
                .add_service(qdrant)
                .serve_with_incoming_shutdown(incoming, async {
                    let _ = rx.await;
                })
                .await;
        });
        Self {
            url: format!("http://{addr}"),
            addr,
            state,
            shutdown: Some(tx),
        }
    }

    /// Creates (or replaces) a collection.
    pub fn create_collection(&self, name: &str, shape: VectorShape) {
        self.state
            .collections
            .write()
            .expect("lock")
            .insert(name.to_string(), Collection::new(shape, Vec::new()));
    }

    /// Cuts every collection into segments of `n` points in write order (0: one segment), for Qdrant's
    /// cross-segment weighting of random samples.
    pub fn set_segment_points(&self, n: u64) {
        self.state.segment_points.store(n, Ordering::SeqCst);
    }

    /// Calls of one gRPC method (e.g. "scroll", "count", "query") answered or failed so far.
    pub fn calls_of(&self, method: &str) -> u64 {
        let counts = self.state.by_method.lock().expect("lock");
        counts.get(method).copied().unwrap_or(0)
    }

    /// Gives a payload field a numeric index (as `create_field_index` does), built at once; a later write
    /// drops it until the next filtered call rebuilds it.
    pub fn index_field(&self, collection: &str, field: &str) {
        let mut collections = self.state.collections.write().expect("lock");
        let target = collections.get_mut(collection).expect("collection exists");
        target.indexed.insert(field.to_string());
        target.indexes.get_mut().expect("lock").clear();
        // Built now, as Qdrant builds an index when it is created, not on the first query.
        let _ = target.index(field);
    }

    /// Inserts points directly, without the dimension check of `upsert` (to stage broken data).
    pub fn insert(&self, collection: &str, points: impl IntoIterator<Item = TestPoint>) {
        let mut collections = self.state.collections.write().expect("lock");
        let target = collections.get_mut(collection).expect("collection exists");
        for p in points {
            let payload = p
                .payload
                .into_iter()
                .map(|(k, v)| (k, json_to_value(v)))
                .collect();
            target.store(Key::Num(p.id), p.vectors, payload);
        }
    }

    /// Number of points stored in a collection.
    pub fn len(&self, collection: &str) -> usize {
        let collections = self.state.collections.read().expect("lock");
        collections.get(collection).map(|c| c.points.len()).unwrap_or(0)
    }

    /// The payload of a stored point as JSON.
    pub fn payload(&self, collection: &str, id: u64) -> Option<serde_json::Value> {
        let collections = self.state.collections.read().expect("lock");
        let stored = collections.get(collection)?.points.get(&Key::Num(id))?;
        Some(serde_json::Value::Object(
            stored
                .payload
                .iter()
                .map(|(k, v)| (k.clone(), value_to_json(v)))
                .collect(),
        ))
    }

    /// Delay before every answer from now on.
    pub fn set_delay(&self, delay: Duration) {
        self.state
            .delay_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    /// Fail the next `n` calls with `Unavailable`.
    pub fn fail_next(&self, n: u32) {
        self.state.fail_next.store(n, Ordering::SeqCst);
    }

    /// Calls answered or failed so far.
    pub fn calls(&self) -> u64 {
        self.state.calls.load(Ordering::SeqCst)
    }

    /// The most calls that were in their `set_delay` delay at the same time: how many requests a client
    /// had in flight at once, when every call waits long enough.
    pub fn most_concurrent_calls(&self) -> u64 {
        self.state.most_delayed.load(Ordering::SeqCst)
    }
}

impl Drop for TestQdrant {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

#[derive(Clone)]
struct Service {
    state: Arc<State>,
}

fn unimplemented(call: &str) -> Status {
    Status::unimplemented(format!("the driftwatch test server does not implement {call}"))
}

fn not_found(name: &str) -> Status {
    Status::not_found(format!("Not found: Collection `{name}` doesn't exist!"))
}

impl Service {
    /// The failure and delay knobs, applied at the start of every call.
    async fn enter(&self, method: &'static str) -> Result<(), Status> {
        self.state.calls.fetch_add(1, Ordering::SeqCst);
        *self
            .state
            .by_method
            .lock()
            .expect("lock")
            .entry(method)
            .or_default() += 1;
        let delay = self.state.delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            let now = self.state.delayed.fetch_add(1, Ordering::SeqCst) + 1;
            self.state.most_delayed.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(delay)).await;
            self.state.delayed.fetch_sub(1, Ordering::SeqCst);
        }
        let failed = self
            .state
            .fail_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if failed {
            return Err(Status::unavailable("test server: injected failure"));
        }
        Ok(())
    }
}

#[tonic::async_trait]
impl Qdrant for Service {
    async fn health_check(
        &self,
        _request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckReply>, Status> {
        self.enter("health_check").await?;
        Ok(Response::new(HealthCheckReply {
            title: "qdrant - vector search engine (driftwatch test server)".to_string(),
            version: "1.15.0".to_string(),
            commit: None,
        }))
    }
}

#[tonic::async_trait]
impl Collections for Service {
    async fn get(
        &self,
        request: Request<GetCollectionInfoRequest>,
    ) -> Result<Response<GetCollectionInfoResponse>, Status> {
        self.enter("get").await?;
        let name = request.into_inner().collection_name;
        let collections = self.state.collections.read().expect("lock");
        let collection = collections.get(&name).ok_or_else(|| not_found(&name))?;
        let config = match &collection.shape {
            VectorShape::Single(size) => {
                VectorsConfigKind::Params(params(*size, collection.cosine.iter().any(String::is_empty)))
            }
            VectorShape::Named(named) => VectorsConfigKind::ParamsMap(VectorParamsMap {
                map: named
                    .iter()
                    .map(|(n, s)| (n.clone(), params(*s, collection.cosine.contains(n))))
                    .collect(),
            }),
        };
        let info = CollectionInfo {
            status: CollectionStatus::Green as i32,
            points_count: Some(collection.points.len() as u64),
            segments_count: 1,
            config: Some(CollectionConfig {
                params: Some(CollectionParams {
                    vectors_config: Some(VectorsConfig { config: Some(config) }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        Ok(Response::new(GetCollectionInfoResponse {
            result: Some(info),
            time: 0.0,
        }))
    }

    async fn list(
        &self,
        _request: Request<ListCollectionsRequest>,
    ) -> Result<Response<ListCollectionsResponse>, Status> {
        self.enter("list").await?;
        let collections = self.state.collections.read().expect("lock");
        let mut names: Vec<&String> = collections.keys().collect();
        names.sort();
        Ok(Response::new(ListCollectionsResponse {
            collections: names
                .into_iter()
                .map(|n| CollectionDescription { name: n.clone() })
                .collect(),
            time: 0.0,
        }))
    }

    async fn create(
        &self,
        request: Request<CreateCollection>,
    ) -> Result<Response<CollectionOperationResponse>, Status> {
        self.enter("create").await?;
        let request = request.into_inner();
        let is_cosine = |p: &VectorParams| p.distance == Distance::Cosine as i32;
        let (shape, cosine) = match request.vectors_config.and_then(|c| c.config) {
            Some(VectorsConfigKind::Params(p)) => (
                VectorShape::Single(p.size),
                if is_cosine(&p) {
                    vec![String::new()]
                } else {
                    Vec::new()
                },
            ),
            Some(VectorsConfigKind::ParamsMap(m)) => {
                let cosine = m
                    .map
                    .iter()
                    .filter(|(_, p)| is_cosine(p))
                    .map(|(n, _)| n.clone())
                    .collect();
                let mut named: Vec<(String, u64)> = m.map.into_iter().map(|(n, p)| (n, p.size)).collect();
                named.sort();
                (VectorShape::Named(named), cosine)
            }
            None => (VectorShape::Named(Vec::new()), Vec::new()),
        };
        let mut collections = self.state.collections.write().expect("lock");
        if collections.contains_key(&request.collection_name) {
            return Err(Status::invalid_argument(format!(
                "Wrong input: Collection `{}` already exists!",
                request.collection_name
            )));
        }
        collections.insert(request.collection_name, Collection::new(shape, cosine));
        Ok(Response::new(CollectionOperationResponse {
            result: true,
            time: 0.0,
        }))
    }

    async fn delete(
        &self,
        request: Request<DeleteCollection>,
    ) -> Result<Response<CollectionOperationResponse>, Status> {
        self.enter("delete").await?;
        let name = request.into_inner().collection_name;
        let removed = self.state.collections.write().expect("lock").remove(&name);
        Ok(Response::new(CollectionOperationResponse {
            result: removed.is_some(),
            time: 0.0,
        }))
    }

    async fn collection_exists(
        &self,
        request: Request<CollectionExistsRequest>,
    ) -> Result<Response<CollectionExistsResponse>, Status> {
        self.enter("collection_exists").await?;
        let name = request.into_inner().collection_name;
        let exists = self.state.collections.read().expect("lock").contains_key(&name);
        Ok(Response::new(CollectionExistsResponse {
            result: Some(CollectionExists { exists }),
            time: 0.0,
        }))
    }

    async fn update(
        &self,
        _request: Request<UpdateCollection>,
    ) -> Result<Response<CollectionOperationResponse>, Status> {
        Err(unimplemented("update"))
    }

    async fn update_aliases(
        &self,
        _request: Request<ChangeAliases>,
    ) -> Result<Response<CollectionOperationResponse>, Status> {
        Err(unimplemented("update_aliases"))
    }

    async fn list_collection_aliases(
        &self,
        _request: Request<ListCollectionAliasesRequest>,
    ) -> Result<Response<ListAliasesResponse>, Status> {
        Err(unimplemented("list_collection_aliases"))
    }

    async fn list_aliases(
        &self,
        _request: Request<ListAliasesRequest>,
    ) -> Result<Response<ListAliasesResponse>, Status> {
        Err(unimplemented("list_aliases"))
    }

    async fn collection_cluster_info(
        &self,
        _request: Request<CollectionClusterInfoRequest>,
    ) -> Result<Response<CollectionClusterInfoResponse>, Status> {
        Err(unimplemented("collection_cluster_info"))
    }

    async fn update_collection_cluster_setup(
        &self,
        _request: Request<UpdateCollectionClusterSetupRequest>,
    ) -> Result<Response<UpdateCollectionClusterSetupResponse>, Status> {
        Err(unimplemented("update_collection_cluster_setup"))
    }

    async fn create_shard_key(
        &self,
        _request: Request<CreateShardKeyRequest>,
    ) -> Result<Response<CreateShardKeyResponse>, Status> {
        Err(unimplemented("create_shard_key"))
    }

    async fn delete_shard_key(
        &self,
        _request: Request<DeleteShardKeyRequest>,
    ) -> Result<Response<DeleteShardKeyResponse>, Status> {
        Err(unimplemented("delete_shard_key"))
    }

    async fn list_shard_keys(
        &self,
        _request: Request<ListShardKeysRequest>,
    ) -> Result<Response<ListShardKeysResponse>, Status> {
        Err(unimplemented("list_shard_keys"))
    }
}

/// Scales to unit length, as Qdrant does for cosine-distance vectors on upsert.
fn normalize(vector: &mut [f32]) {
    let norm = vector.iter().map(|v| v * v).sum::<f32>().sqrt();
    if norm > f32::EPSILON {
        vector.iter_mut().for_each(|v| *v /= norm);
    }
}

fn params(size: u64, cosine: bool) -> VectorParams {
    VectorParams {
        size,
        distance: if cosine {
            Distance::Cosine
        } else {
            Distance::Euclid
        } as i32,
        ..Default::default()
    }
}

#[tonic::async_trait]
impl Points for Service {
    async fn upsert(
        &self,
        request: Request<UpsertPoints>,
    ) -> Result<Response<PointsOperationResponse>, Status> {
        self.enter("upsert").await?;
        let request = request.into_inner();
        let mut collections = self.state.collections.write().expect("lock");
        let collection = collections
            .get_mut(&request.collection_name)
            .ok_or_else(|| not_found(&request.collection_name))?;
        let mut staged = Vec::with_capacity(request.points.len());
        for point in request.points {
            let key = Key::from_proto(
                point
                    .id
                    .as_ref()
                    .ok_or_else(|| Status::invalid_argument("Wrong input: point without id"))?,
            )?;
            let mut vectors = input_vectors(point.vectors)?;
            for (name, vector) in vectors.iter_mut() {
                if collection.cosine.contains(name) {
                    normalize(vector);
                }
            }
            for (name, vector) in &vectors {
                let expected = match (&collection.shape, name.as_str()) {
                    (VectorShape::Single(size), "") => Some(*size),
                    (VectorShape::Named(named), name) => {
                        named.iter().find(|(n, _)| n == name).map(|(_, s)| *s)
                    }
                    _ => None,
                };
                match expected {
                    None => {
                        return Err(Status::invalid_argument(format!(
                            "Wrong input: Not existing vector name error: {name}"
                        )));
                    }
                    Some(size) if size as usize != vector.len() => {
                        return Err(Status::invalid_argument(format!(
                            "Wrong input: Vector dimension error: expected dim: {size}, got {}",
                            vector.len()
                        )));
                    }
                    Some(_) => {}
                }
            }
            staged.push((key, vectors, point.payload));
        }
        for (key, vectors, payload) in staged {
            collection.store(key, vectors, payload);
        }
        Ok(Response::new(PointsOperationResponse {
            result: Some(UpdateResult {
                operation_id: Some(0),
                status: UpdateStatus::Completed as i32,
            }),
            time: 0.0,
            usage: None,
        }))
    }

    async fn scroll(&self, request: Request<ScrollPoints>) -> Result<Response<ScrollResponse>, Status> {
        self.enter("scroll").await?;
        let request = request.into_inner();
        let collections = self.state.collections.read().expect("lock");
        let collection = collections
            .get(&request.collection_name)
            .ok_or_else(|| not_found(&request.collection_name))?;
        let limit = request.limit.unwrap_or(10) as usize;
        if limit == 0 {
            return Err(Status::invalid_argument("Validation error: limit must be >= 1"));
        }
        let start = match &request.offset {
            Some(id) => std::ops::Bound::Included(Key::from_proto(id)?),
            None => std::ops::Bound::Unbounded,
        };
        let filter = request.filter.as_ref();
        let mut result = Vec::with_capacity(limit);
        let mut next_page_offset = None;
        for (key, stored) in collection.scan(filter, start) {
            if let Some(filter) = filter
                && !matches_filter(filter, key, stored)?
            {
                continue;
            }
            if result.len() == limit {
                next_page_offset = Some(key.to_proto());
                break;
            }
            result.push(retrieved(
                key,
                stored,
                &collection.shape,
                request.with_payload.as_ref(),
                request.with_vectors.as_ref(),
            ));
        }
        Ok(Response::new(ScrollResponse {
            next_page_offset,
            result,
            time: 0.0,
            usage: None,
        }))
    }

    async fn count(&self, request: Request<CountPoints>) -> Result<Response<CountResponse>, Status> {
        self.enter("count").await?;
        let request = request.into_inner();
        let collections = self.state.collections.read().expect("lock");
        let collection = collections
            .get(&request.collection_name)
            .ok_or_else(|| not_found(&request.collection_name))?;
        let mut count = 0u64;
        for (key, stored) in collection.scan(request.filter.as_ref(), std::ops::Bound::Unbounded) {
            let keep = match &request.filter {
                Some(filter) => matches_filter(filter, key, stored)?,
                None => true,
            };
            count += u64::from(keep);
        }
        Ok(Response::new(CountResponse {
            result: Some(CountResult { count }),
            time: 0.0,
            usage: None,
        }))
    }

    async fn delete(
        &self,
        _request: Request<DeletePoints>,
    ) -> Result<Response<PointsOperationResponse>, Status> {
        Err(unimplemented("delete"))
    }

    async fn get(&self, _request: Request<GetPoints>) -> Result<Response<GetResponse>, Status> {
        Err(unimplemented("get"))
    }

    async fn update_vectors(
        &self,
        _request: Request<UpdatePointVectors>,
    ) -> Result<Response<PointsOperationResponse>, Status> {
        Err(unimplemented("update_vectors"))
    }

    async fn delete_vectors(
        &self,
        _request: Request<DeletePointVectors>,
    ) -> Result<Response<PointsOperationResponse>, Status> {
        Err(unimplemented("delete_vectors"))
    }

    async fn set_payload(
        &self,
        _request: Request<SetPayloadPoints>,
    ) -> Result<Response<PointsOperationResponse>, Status> {
        Err(unimplemented("set_payload"))
    }

    async fn overwrite_payload(
        &self,
        _request: Request<SetPayloadPoints>,
    ) -> Result<Response<PointsOperationResponse>, Status> {
        Err(unimplemented("overwrite_payload"))
    }

    async fn delete_payload(
        &self,
        _request: Request<DeletePayloadPoints>,
    ) -> Result<Response<PointsOperationResponse>, Status> {
        Err(unimplemented("delete_payload"))
    }

    async fn clear_payload(
        &self,
        _request: Request<ClearPayloadPoints>,
    ) -> Result<Response<PointsOperationResponse>, Status> {
        Err(unimplemented("clear_payload"))
    }

    async fn create_field_index(
        &self,
        request: Request<CreateFieldIndexCollection>,
    ) -> Result<Response<PointsOperationResponse>, Status> {
        self.enter("create_field_index").await?;
        let request = request.into_inner();
        let mut collections = self.state.collections.write().expect("lock");
        let collection = collections
            .get_mut(&request.collection_name)
            .ok_or_else(|| not_found(&request.collection_name))?;
        collection.indexed.insert(request.field_name);
        collection.indexes.get_mut().expect("lock").clear();
        Ok(Response::new(PointsOperationResponse {
            result: Some(UpdateResult {
                operation_id: Some(0),
                status: UpdateStatus::Completed as i32,
            }),
            time: 0.0,
            usage: None,
        }))
    }

    async fn delete_field_index(
        &self,
        _request: Request<DeleteFieldIndexCollection>,
    ) -> Result<Response<PointsOperationResponse>, Status> {
        Err(unimplemented("delete_field_index"))
    }

    async fn create_vector_name(
        &self,
        _request: Request<CreateVectorNameRequest>,
    ) -> Result<Response<PointsOperationResponse>, Status> {
        Err(unimplemented("create_vector_name"))
    }

    async fn delete_vector_name(
        &self,
        _request: Request<DeleteVectorNameRequest>,
    ) -> Result<Response<PointsOperationResponse>, Status> {
        Err(unimplemented("delete_vector_name"))
    }

    async fn search(&self, _request: Request<SearchPoints>) -> Result<Response<SearchResponse>, Status> {
        Err(unimplemented("search"))
    }

    async fn search_batch(
        &self,
        _request: Request<SearchBatchPoints>,
    ) -> Result<Response<SearchBatchResponse>, Status> {
        Err(unimplemented("search_batch"))
    }

    async fn search_groups(
        &self,
        _request: Request<SearchPointGroups>,
    ) -> Result<Response<SearchGroupsResponse>, Status> {
        Err(unimplemented("search_groups"))
    }

    async fn recommend(
        &self,
        _request: Request<RecommendPoints>,
    ) -> Result<Response<RecommendResponse>, Status> {
        Err(unimplemented("recommend"))
    }

    async fn recommend_batch(
        &self,
        _request: Request<RecommendBatchPoints>,
    ) -> Result<Response<RecommendBatchResponse>, Status> {
        Err(unimplemented("recommend_batch"))
    }

    async fn recommend_groups(
        &self,
        _request: Request<RecommendPointGroups>,
    ) -> Result<Response<RecommendGroupsResponse>, Status> {
        Err(unimplemented("recommend_groups"))
    }

    async fn discover(
        &self,
        _request: Request<DiscoverPoints>,
    ) -> Result<Response<DiscoverResponse>, Status> {
        Err(unimplemented("discover"))
    }

    async fn discover_batch(
        &self,
        _request: Request<DiscoverBatchPoints>,
    ) -> Result<Response<DiscoverBatchResponse>, Status> {
        Err(unimplemented("discover_batch"))
    }

    async fn update_batch(
        &self,
        _request: Request<UpdateBatchPoints>,
    ) -> Result<Response<UpdateBatchResponse>, Status> {
        Err(unimplemented("update_batch"))
    }

    async fn query(&self, request: Request<QueryPoints>) -> Result<Response<QueryResponse>, Status> {
        self.enter("query").await?;
        let request = request.into_inner();
        let limit = request.limit.unwrap_or(10);
        if limit == 0 {
            return Err(Status::invalid_argument(
                "Validation error in body: [limit: value 0 invalid, must be 1 or larger]",
            ));
        }
        if !request.prefetch.is_empty() {
            return Err(unimplemented("query with prefetch"));
        }
        match request.query.as_ref().and_then(|q| q.variant.as_ref()) {
            Some(query::Variant::Sample(sample)) if *sample == Sample::Random as i32 => {}
            _ => return Err(unimplemented("query other than sample: random")),
        }
        let collections = self.state.collections.read().expect("lock");
        let collection = collections
            .get(&request.collection_name)
            .ok_or_else(|| not_found(&request.collection_name))?;
        let segment_points = self.state.segment_points.load(Ordering::SeqCst);
        let keys = random_sample(
            collection,
            request.filter.as_ref(),
            limit as usize,
            segment_points,
        )?;
        let result = keys
            .into_iter()
            .map(|key| {
                let stored = &collection.points[key];
                let point = retrieved(
                    key,
                    stored,
                    &collection.shape,
                    request.with_payload.as_ref(),
                    request.with_vectors.as_ref(),
                );
                ScoredPoint {
                    id: point.id,
                    payload: point.payload,
                    score: 1.0,
                    version: 0,
                    vectors: point.vectors,
                    shard_key: None,
                    order_value: None,
                }
            })
            .collect();
        Ok(Response::new(QueryResponse {
            result,
            time: 0.0,
            usage: None,
        }))
    }

    async fn query_batch(
        &self,
        _request: Request<QueryBatchPoints>,
    ) -> Result<Response<QueryBatchResponse>, Status> {
        Err(unimplemented("query_batch"))
    }

    async fn query_groups(
        &self,
        _request: Request<QueryPointGroups>,
    ) -> Result<Response<QueryGroupsResponse>, Status> {
        Err(unimplemented("query_groups"))
    }

    async fn facet(&self, _request: Request<FacetCounts>) -> Result<Response<FacetResponse>, Status> {
        Err(unimplemented("facet"))
    }

    async fn search_matrix_pairs(
        &self,
        _request: Request<SearchMatrixPoints>,
    ) -> Result<Response<SearchMatrixPairsResponse>, Status> {
        Err(unimplemented("search_matrix_pairs"))
    }

    async fn search_matrix_offsets(
        &self,
        _request: Request<SearchMatrixPoints>,
    ) -> Result<Response<SearchMatrixOffsetsResponse>, Status> {
        Err(unimplemented("search_matrix_offsets"))
    }
}

/// Qdrant's random sample of a local shard (`scroll_randomly`): per segment up to `limit` matching points
/// in random order; then picks weighted by the segments' total sizes until a picked segment is exhausted,
/// and fills up from the rest in segment order. Returned in no particular order.
fn random_sample<'a>(
    collection: &'a Collection,
    filter: Option<&Filter>,
    limit: usize,
    segment_points: u64,
) -> Result<Vec<&'a Key>, Status> {
    use rand::Rng;
    use rand::seq::SliceRandom;

    let segment_of = |stored: &Stored| stored.seq.checked_div(segment_points).unwrap_or(0) as usize;
    let mut totals: Vec<u64> = Vec::new();
    for stored in collection.points.values() {
        let segment = segment_of(stored);
        if totals.len() <= segment {
            totals.resize(segment + 1, 0);
        }
        totals[segment] += 1;
    }
    let mut candidates: Vec<Vec<&Key>> = vec![Vec::new(); totals.len()];
    for (key, stored) in collection.scan(filter, std::ops::Bound::Unbounded) {
        let segment = segment_of(stored);
        let keep = match filter {
            Some(filter) => matches_filter(filter, key, stored)?,
            None => true,
        };
        if keep {
            candidates[segment].push(key);
        }
    }
    let mut rng = rand::rng();
    for list in &mut candidates {
        list.shuffle(&mut rng);
        list.truncate(limit);
    }
    let total: u64 = totals.iter().sum();
    let mut picked: Vec<&Key> = Vec::with_capacity(limit.min(candidates.iter().map(Vec::len).sum()));
    if total == 0 {
        return Ok(picked);
    }
    while picked.len() < limit {
        let mut ticket = rng.random_range(0..total);
        let mut segment = 0;
        while ticket >= totals[segment] {
            ticket -= totals[segment];
            segment += 1;
        }
        match candidates[segment].pop() {
            Some(key) => picked.push(key),
            None => break,
        }
    }
    for key in candidates.into_iter().flatten() {
        if picked.len() >= limit {
            break;
        }
        picked.push(key);
    }
    picked.shuffle(&mut rng);
    Ok(picked)
}

fn input_vectors(vectors: Option<Vectors>) -> Result<HashMap<String, Vec<f32>>, Status> {
    let dense = |v: Vector| -> Result<Vec<f32>, Status> {
        #[allow(deprecated)]
        match v.vector {
            Some(vector::Vector::Dense(d)) => Ok(d.data),
            None => Ok(v.data),
            Some(_) => Err(Status::invalid_argument(
                "the driftwatch test server stores dense vectors only",
            )),
        }
    };
    match vectors.and_then(|v| v.vectors_options) {
        Some(vectors::VectorsOptions::Vector(v)) => Ok(HashMap::from([(String::new(), dense(v)?)])),
        Some(vectors::VectorsOptions::Vectors(named)) => named
            .vectors
            .into_iter()
            .map(|(name, v)| Ok((name, dense(v)?)))
            .collect(),
        None => Err(Status::invalid_argument("Wrong input: point without vectors")),
    }
}

fn retrieved(
    key: &Key,
    stored: &Stored,
    shape: &VectorShape,
    with_payload: Option<&WithPayloadSelector>,
    with_vectors: Option<&WithVectorsSelector>,
) -> RetrievedPoint {
    let payload = match with_payload.and_then(|s| s.selector_options.as_ref()) {
        None | Some(PayloadSel::Enable(true)) => stored.payload.clone(),
        Some(PayloadSel::Enable(false)) => HashMap::new(),
        Some(PayloadSel::Include(include)) => stored
            .payload
            .iter()
            .filter(|(k, _)| {
                include.fields.iter().any(|f| {
                    f == *k
                        || f.strip_prefix(k.as_str())
                            .is_some_and(|rest| rest.starts_with('.'))
                })
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        Some(PayloadSel::Exclude(exclude)) => stored
            .payload
            .iter()
            .filter(|(k, _)| !exclude.fields.contains(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    };
    let names: Option<Vec<String>> = match with_vectors.and_then(|s| s.selector_options.as_ref()) {
        None | Some(VectorSel::Enable(false)) => None,
        Some(VectorSel::Enable(true)) => Some(stored.vectors.keys().cloned().collect()),
        Some(VectorSel::Include(include)) => Some(include.names.clone()),
    };
    let output = |data: &Vec<f32>| VectorOutput {
        vector: Some(vector_output::Vector::Dense(DenseVector { data: data.clone() })),
        ..Default::default()
    };
    let vectors = names.map(|names| match shape {
        VectorShape::Single(_) => VectorsOutput {
            vectors_options: stored.vectors.get("").map(|v| OutOptions::Vector(output(v))),
        },
        VectorShape::Named(_) => VectorsOutput {
            vectors_options: Some(OutOptions::Vectors(NamedVectorsOutput {
                vectors: names
                    .iter()
                    .filter_map(|n| stored.vectors.get(n).map(|v| (n.clone(), output(v))))
                    .collect(),
            })),
        },
    });
    RetrievedPoint {
        id: Some(key.to_proto()),
        payload,
        vectors,
        shard_key: None,
        order_value: None,
    }
}

fn matches_filter(filter: &Filter, key: &Key, stored: &Stored) -> Result<bool, Status> {
    for c in &filter.must {
        if !matches_condition(c, key, stored)? {
            return Ok(false);
        }
    }
    for c in &filter.must_not {
        if matches_condition(c, key, stored)? {
            return Ok(false);
        }
    }
    if !filter.should.is_empty() {
        let mut any = false;
        for c in &filter.should {
            if matches_condition(c, key, stored)? {
                any = true;
                break;
            }
        }
        if !any {
            return Ok(false);
        }
    }
    if filter.min_should.is_some() {
        return Err(unimplemented("min_should"));
    }
    Ok(true)
}

fn matches_condition(condition: &Condition, key: &Key, stored: &Stored) -> Result<bool, Status> {
    match condition.condition_one_of.as_ref() {
        Some(ConditionOneOf::Field(field)) => matches_field(field, stored),
        Some(ConditionOneOf::IsEmpty(c)) => Ok(values_at(&stored.payload, &c.key).is_empty()),
        Some(ConditionOneOf::HasId(c)) => {
            for id in &c.has_id {
                if &Key::from_proto(id)? == key {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        Some(ConditionOneOf::Filter(f)) => matches_filter(f, key, stored),
        Some(_) => Err(unimplemented("this filter condition")),
        None => Err(Status::invalid_argument("Wrong input: empty condition")),
    }
}

fn matches_field(field: &FieldCondition, stored: &Stored) -> Result<bool, Status> {
    let values = values_at(&stored.payload, &field.key);
    if let Some(m) = &field.r#match {
        let Some(m) = &m.match_value else {
            return Err(Status::invalid_argument("Wrong input: empty match"));
        };
        return Ok(values.iter().any(|v| match (m, v.kind.as_ref()) {
            (MatchValue::Keyword(k), Some(Kind::StringValue(s))) => k == s,
            (MatchValue::Integer(i), Some(Kind::IntegerValue(n))) => i == n,
            (MatchValue::Boolean(b), Some(Kind::BoolValue(x))) => b == x,
            (MatchValue::Keywords(ks), Some(Kind::StringValue(s))) => ks.strings.contains(s),
            (MatchValue::Integers(is), Some(Kind::IntegerValue(n))) => is.integers.contains(n),
            _ => false,
        }));
    }
    if let Some(r) = &field.range {
        return Ok(values.iter().any(|v| {
            let x = match v.kind.as_ref() {
                Some(Kind::DoubleValue(d)) => *d,
                Some(Kind::IntegerValue(i)) => *i as f64,
                _ => return false,
            };
            r.lt.is_none_or(|b| x < b)
                && r.lte.is_none_or(|b| x <= b)
                && r.gt.is_none_or(|b| x > b)
                && r.gte.is_none_or(|b| x >= b)
        }));
    }
    if let Some(r) = &field.datetime_range {
        let bound = |t: &Option<prost_types::Timestamp>| {
            t.as_ref()
                .and_then(|t| jiff::Timestamp::new(t.seconds, t.nanos).ok())
        };
        let (lt, lte, gt, gte) = (bound(&r.lt), bound(&r.lte), bound(&r.gt), bound(&r.gte));
        return Ok(values.iter().any(|v| {
            let Some(Kind::StringValue(s)) = v.kind.as_ref() else {
                return false;
            };
            let Some(x) = parse_datetime(s) else {
                return false;
            };
            lt.is_none_or(|b| x < b)
                && lte.is_none_or(|b| x <= b)
                && gt.is_none_or(|b| x > b)
                && gte.is_none_or(|b| x >= b)
        }));
    }
    if field.is_empty == Some(true) {
        return Ok(values.is_empty());
    }
    Err(unimplemented("this field condition"))
}

/// Datetimes as Qdrant reads them: RFC 3339, or a naive date-time / date taken as UTC.
fn parse_datetime(text: &str) -> Option<jiff::Timestamp> {
    if let Ok(t) = text.parse::<jiff::Timestamp>() {
        return Some(t);
    }
    if let Ok(dt) = text.parse::<jiff::civil::DateTime>() {
        return dt.to_zoned(jiff::tz::TimeZone::UTC).ok().map(|z| z.timestamp());
    }
    None
}

/// Values at a dotted path; arrays are flattened and nulls dropped (an empty result is "is_empty").
fn values_at<'a>(payload: &'a HashMap<String, Value>, key: &str) -> Vec<&'a Value> {
    if !key.contains('.') {
        // The common case, without the path walk's intermediate lists.
        return match payload.get(key).map(|v| (v, v.kind.as_ref())) {
            None | Some((_, None | Some(Kind::NullValue(_)))) => Vec::new(),
            Some((_, Some(Kind::ListValue(list)))) => list
                .values
                .iter()
                .filter(|v| !matches!(v.kind, None | Some(Kind::NullValue(_))))
                .collect(),
            Some((v, _)) => vec![v],
        };
    }
    let mut parts = key.split('.');
    let Some(first) = parts.next() else {
        return Vec::new();
    };
    let mut current: Vec<&Value> = payload.get(first).into_iter().collect();
    for part in parts {
        let mut next = Vec::new();
        for v in flatten(current) {
            if let Some(Kind::StructValue(s)) = v.kind.as_ref()
                && let Some(inner) = s.fields.get(part)
            {
                next.push(inner);
            }
        }
        current = next;
    }
    flatten(current)
        .into_iter()
        .filter(|v| !matches!(v.kind, None | Some(Kind::NullValue(_))))
        .collect()
}

fn flatten(values: Vec<&Value>) -> Vec<&Value> {
    let mut out = Vec::new();
    for v in values {
        match v.kind.as_ref() {
            Some(Kind::ListValue(list)) => out.extend(list.values.iter()),
            _ => out.push(v),
        }
    }
    out
}

/// JSON to a Qdrant payload value (integers stay integers, as in Qdrant).
pub fn json_to_value(v: serde_json::Value) -> Value {
    let kind = match v {
        serde_json::Value::Null => Kind::NullValue(0),
        serde_json::Value::Bool(b) => Kind::BoolValue(b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Kind::IntegerValue(i),
            None => Kind::DoubleValue(n.as_f64().unwrap_or(f64::NAN)),
        },
        serde_json::Value::String(s) => Kind::StringValue(s),
        serde_json::Value::Array(a) => Kind::ListValue(ListValue {
            values: a.into_iter().map(json_to_value).collect(),
        }),
        serde_json::Value::Object(o) => Kind::StructValue(Struct {
            fields: o.into_iter().map(|(k, v)| (k, json_to_value(v))).collect(),
        }),
    };
    Value { kind: Some(kind) }
}

/// A Qdrant payload value as JSON.
pub fn value_to_json(v: &Value) -> serde_json::Value {
    match v.kind.as_ref() {
        None | Some(Kind::NullValue(_)) => serde_json::Value::Null,
        Some(Kind::BoolValue(b)) => serde_json::Value::Bool(*b),
        Some(Kind::IntegerValue(i)) => serde_json::Value::from(*i),
        Some(Kind::DoubleValue(d)) => serde_json::Value::from(*d),
        Some(Kind::StringValue(s)) => serde_json::Value::String(s.clone()),
        Some(Kind::ListValue(l)) => serde_json::Value::Array(l.values.iter().map(value_to_json).collect()),
        Some(Kind::StructValue(s)) => serde_json::Value::Object(
            s.fields
                .iter()
                .map(|(k, v)| (k.clone(), value_to_json(v)))
                .collect(),
        ),
    }
}
