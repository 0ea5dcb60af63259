//! Deployments and canaries, off the request path: which deployment each stage of each API
//! runs, the last deployments kept for an instant rollback, canary releases and their
//! promotion. Every change builds a new [`Served`] that the gateway swaps in atomically;
//! requests in flight keep the one they started with.
//!
//! As in API Gateway: a deployment is an immutable snapshot of an API (here: a compiled
//! definition, [`Api`]) and a stage points at one; a canary (`canarySettings`) sends
//! `percentTraffic` of a stage's requests to another deployment, or to the stage's own with
//! other stage variables; promoting it makes its deployment the stage's, its variable overrides
//! merged into the stage's variables (AWS's "Promote a canary release").

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::{
    ApiDefinition, CanaryDefinition, DomainDefinition, StageDefinition, UniqueMap,
};
use crate::deployment::{Api, DeploymentId, Release};
use crate::domain::{Served, StageView, Target};
use crate::error::{Error, KeyPath};

/// How many deployments of each API a gateway keeps for rollbacks, by default.
pub(crate) const KEEP_DEPLOYMENTS: usize = 10;

/// Compiles a definition as a release; relative paths start from the directory given.
pub(crate) type Compile<'c> =
    dyn Fn(Arc<ApiDefinition>, &Path, &Release) -> Result<Api, Error> + 'c;

/// Every API's deployments and stages, and the domains: what [`Served`] is built from.
pub(crate) struct Releases {
    apis: Vec<ApiReleases>,
    domains: UniqueMap<DomainDefinition>,
    keep: usize,
}

/// One API's deployments and what each of its stages runs (a clone shares the compiled
/// deployments: changes are made on a clone, then published).
#[derive(Clone)]
struct ApiReleases {
    name: String,
    /// Where the definition's relative paths start.
    base_dir: PathBuf,
    /// The last deployments, oldest first.
    history: VecDeque<Arc<Api>>,
    /// Each stage, in the definition's order.
    stages: Vec<(String, StageState)>,
}

/// What one stage runs.
#[derive(Clone)]
struct StageState {
    /// The deployment the stage runs (its compiled stage of that name).
    main: Arc<Api>,
    canary: Option<CanaryState>,
}

#[derive(Clone)]
struct CanaryState {
    percent: f64,
    /// The canary's variant: compiled with the stage's settings, the overrides merged in.
    api: Arc<Api>,
}

/// An API to deploy: its name in the gateway, its definition and where its paths start.
pub(crate) struct Candidate {
    pub(crate) name: String,
    pub(crate) definition: ApiDefinition,
    pub(crate) base_dir: PathBuf,
}

/// A deployment a gateway keeps, as [`crate::Gateway::deployments`] lists it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DeploymentInfo {
    /// Its id.
    pub id: DeploymentId,
    /// When it was compiled.
    pub created: std::time::SystemTime,
    /// The stages that run it now.
    pub stages: Vec<String>,
    /// The stages whose canary runs it now.
    pub canary_stages: Vec<String>,
}

impl Releases {
    /// Nothing deployed yet.
    pub(crate) fn new(keep: usize) -> Self {
        Releases {
            apis: Vec::new(),
            domains: UniqueMap::new(),
            keep: keep.max(1),
        }
    }

    /// The API names, in the order they were first deployed.
    pub(crate) fn api_names(&self) -> Vec<String> {
        self.apis.iter().map(|api| api.name.clone()).collect()
    }

    /// The deployments this gateway keeps of API `name`, oldest first.
    pub(crate) fn deployments(&self, name: &str) -> Result<Vec<DeploymentInfo>, Error> {
        let api = self.api(name)?;
        let mut kept: Vec<&Arc<Api>> = api.history.iter().collect();
        // A promoted canary's deployment runs a stage without being in the history.
        for (_, state) in &api.stages {
            if !kept.iter().any(|k| k.id == state.main.id) {
                kept.push(&state.main);
            }
        }
        Ok(kept
            .into_iter()
            .map(|deployment| DeploymentInfo {
                id: deployment.id.clone(),
                created: deployment.created,
                stages: api
                    .stages
                    .iter()
                    .filter(|(_, s)| s.main.id == deployment.id)
                    .map(|(name, _)| name.clone())
                    .collect(),
                canary_stages: api
                    .stages
                    .iter()
                    .filter(|(_, s)| s.canary.as_ref().is_some_and(|c| c.api.id == deployment.id))
                    .map(|(name, _)| name.clone())
                    .collect(),
            })
            .collect())
    }

    /// Where API `name`'s relative paths start, if the gateway has it.
    pub(crate) fn base_dir(&self, name: &str) -> Option<PathBuf> {
        self.apis
            .iter()
            .find(|api| api.name == name)
            .map(|api| api.base_dir.clone())
    }

    fn api(&self, name: &str) -> Result<&ApiReleases, Error> {
        self.apis
            .iter()
            .find(|api| api.name == name)
            .ok_or_else(|| Error::Release(format!("no API named \"{name}\"")))
    }

    /// Whether some API keeps a deployment with id `id`.
    fn taken(&self, id: &str) -> bool {
        self.apis.iter().any(|api| {
            api.history.iter().any(|d| d.id.as_str() == id)
                || api.stages.iter().any(|(_, s)| {
                    s.main.id.as_str() == id
                        || s.canary.as_ref().is_some_and(|c| c.api.id.as_str() == id)
                })
        })
    }

    /// Compiles every candidate (each a new deployment of its API, its stages and canaries
    /// running it) and sets the domains, all or nothing: on an error nothing changes. APIs not
    /// among the candidates are dropped when `replace_all`, else kept as they are.
    pub(crate) fn deploy(
        &mut self,
        candidates: Vec<Candidate>,
        domains: Option<UniqueMap<DomainDefinition>>,
        replace_all: bool,
        compile: &Compile<'_>,
    ) -> Result<(Served, Vec<DeploymentId>), Error> {
        let mut next: Vec<ApiReleases> = if replace_all {
            Vec::new()
        } else {
            self.apis.clone()
        };
        let mut ids = Vec::new();
        for candidate in candidates {
            let id = DeploymentId::new_unique(|id| {
                self.taken(id) || ids.iter().any(|taken: &DeploymentId| taken.as_str() == id)
            });
            let previous = self.apis.iter().find(|api| api.name == candidate.name);
            let taken = |id: &str| self.taken(id) || ids.iter().any(|t| t.as_str() == id);
            let api =
                compile_deployment(candidate, id.clone(), previous, self.keep, &taken, compile)?;
            ids.push(id);
            match next.iter_mut().find(|a| a.name == api.name) {
                Some(slot) => *slot = api,
                None => next.push(api),
            }
        }
        let domains = domains.unwrap_or_else(|| self.domains.clone());
        let served = build_served(&next, &domains)?;
        self.apis = next;
        self.domains = domains;
        Ok((served, ids))
    }

    /// Stage `stage` (of the API that keeps deployment `id`) runs deployment `id` again.
    pub(crate) fn rollback(&mut self, stage: &str, id: &DeploymentId) -> Result<Served, Error> {
        let index = self
            .apis
            .iter()
            .position(|api| api.history.iter().any(|d| &d.id == id))
            .ok_or_else(|| Error::Release(format!("no kept deployment has the id \"{id}\"")))?;
        let mut next: Vec<ApiReleases> = self.apis.clone();
        let api = &mut next[index];
        let deployment = api
            .history
            .iter()
            .find(|d| &d.id == id)
            .cloned()
            .ok_or_else(|| Error::Release(format!("no kept deployment has the id \"{id}\"")))?;
        if deployment.stage_named(stage).is_none() {
            return Err(Error::Release(format!(
                "deployment {id} has no stage \"{stage}\" to roll back to"
            )));
        }
        let state = api.stage_mut(stage)?;
        state.main = deployment;
        let served = build_served(&next, &self.domains)?;
        self.apis = next;
        Ok(served)
    }

    /// The canary of `stage` of API `name` becomes the stage's deployment (its overrides
    /// merged into the stage's variables), and the stage has no canary any more.
    pub(crate) fn promote(
        &mut self,
        name: &str,
        stage: &str,
        compile: &Compile<'_>,
    ) -> Result<Served, Error> {
        let index = self.index(name)?;
        let mut next: Vec<ApiReleases> = self.apis.clone();
        let api = &mut next[index];
        let base_dir = api.base_dir.clone();
        let state = api.stage_mut(stage)?;
        let canary = state.canary.take().ok_or_else(|| {
            Error::Release(format!("stage \"{stage}\" of API \"{name}\" has no canary"))
        })?;
        // The canary's variant already holds the merged variables; compiled again as the
        // stage's own (no canary flag in its log and metrics).
        let release = Release {
            id: canary.api.id.clone(),
            canary: false,
            shares_stage_cache: false,
        };
        let promoted = Arc::new(compile(
            Arc::clone(&canary.api.definition),
            &base_dir,
            &release,
        )?);
        state.main = Arc::clone(&promoted);
        if !api.history.iter().any(|d| d.id == promoted.id) {
            api.history.push_back(promoted);
            trim(&mut api.history, self.keep);
        }
        let served = build_served(&next, &self.domains)?;
        self.apis = next;
        Ok(served)
    }

    /// Stage `stage` of API `name` stops sending requests to its canary.
    pub(crate) fn remove_canary(&mut self, name: &str, stage: &str) -> Result<Served, Error> {
        let index = self.index(name)?;
        let mut next: Vec<ApiReleases> = self.apis.clone();
        let state = next[index].stage_mut(stage)?;
        if state.canary.take().is_none() {
            return Err(Error::Release(format!(
                "stage \"{stage}\" of API \"{name}\" has no canary"
            )));
        }
        let served = build_served(&next, &self.domains)?;
        self.apis = next;
        Ok(served)
    }

    fn index(&self, name: &str) -> Result<usize, Error> {
        self.apis
            .iter()
            .position(|api| api.name == name)
            .ok_or_else(|| Error::Release(format!("no API named \"{name}\"")))
    }
}

impl ApiReleases {
    fn stage_mut(&mut self, stage: &str) -> Result<&mut StageState, Error> {
        let name = &self.name;
        self.stages
            .iter_mut()
            .find(|(s, _)| s == stage)
            .map(|(_, state)| state)
            .ok_or_else(|| Error::Release(format!("API \"{name}\" has no stage \"{stage}\"")))
    }
}

/// Drops the oldest deployments beyond `keep` (a stage running one keeps it alive).
fn trim(history: &mut VecDeque<Arc<Api>>, keep: usize) {
    while history.len() > keep {
        history.pop_front();
    }
}

/// A new deployment of `candidate` as `id`: every stage runs it, each stage's canary compiled.
fn compile_deployment(
    candidate: Candidate,
    id: DeploymentId,
    previous: Option<&ApiReleases>,
    keep: usize,
    taken: &dyn Fn(&str) -> bool,
    compile: &Compile<'_>,
) -> Result<ApiReleases, Error> {
    let Candidate {
        name,
        definition,
        base_dir,
    } = candidate;
    let definition = Arc::new(definition);
    let release = Release {
        id: id.clone(),
        canary: false,
        shares_stage_cache: false,
    };
    let api = Arc::new(compile(Arc::clone(&definition), &base_dir, &release)?);
    let mut history = previous.map(|p| p.history.clone()).unwrap_or_default();
    let mut stages = Vec::new();
    for (stage, stage_def) in definition.stages.iter() {
        let canary = match &stage_def.canary {
            None => None,
            Some(canary) => {
                let at = KeyPath::root().key("stages").key(stage).key("canary");
                Some(compile_canary(
                    &api, stage, stage_def, canary, &history, &base_dir, taken, compile, &at,
                )?)
            }
        };
        stages.push((
            stage.to_owned(),
            StageState {
                main: Arc::clone(&api),
                canary,
            },
        ));
    }
    history.push_back(api);
    trim(&mut history, keep);
    Ok(ApiReleases {
        name,
        base_dir,
        history,
        stages,
    })
}

/// A stage's canary: the deployment its `deployment` names (a kept id, another definition's
/// file, or none: the stage's own), compiled with the stage's settings and variables, the
/// overrides merged over them, flagged canary in logs and metrics.
#[allow(clippy::too_many_arguments)] // What a canary is compiled from: each is needed.
fn compile_canary(
    main: &Arc<Api>,
    stage: &str,
    stage_def: &StageDefinition,
    canary: &CanaryDefinition,
    history: &VecDeque<Arc<Api>>,
    base_dir: &Path,
    taken: &dyn Fn(&str) -> bool,
    compile: &Compile<'_>,
    at: &KeyPath,
) -> Result<CanaryState, Error> {
    let (source, id, source_dir) = match canary.deployment.as_deref() {
        None => (
            main.definition.as_ref().clone(),
            main.id.clone(),
            base_dir.to_path_buf(),
        ),
        Some(text) if canary.deployment_file().is_none() => {
            let kept = history
                .iter()
                .find(|d| d.id.as_str() == text)
                .ok_or_else(|| {
                    Error::config(
                        at.key("deployment"),
                        format!("no kept deployment has the id \"{text}\""),
                    )
                })?;
            (
                kept.definition.as_ref().clone(),
                kept.id.clone(),
                base_dir.to_path_buf(),
            )
        }
        Some(file) => {
            let path = base_dir.join(file);
            let definition = ApiDefinition::from_file(&path)?;
            let dir = path
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| base_dir.to_path_buf());
            let id = DeploymentId::new_unique(|id| {
                // Unique among every API's deployments, the one being compiled included.
                taken(id) || id == main.id.as_str()
            });
            (definition, id, dir)
        }
    };
    let mut variant = source;
    // The canary is another version of the same API: its buckets, metrics and plugins are
    // the API's.
    variant.api_id = Some(main.identity.api_id.clone());
    let mut settings = stage_def.clone();
    settings.canary = None;
    for (name, value) in canary.stage_variable_overrides.iter() {
        settings.variables.set(name, value.clone());
    }
    for (_, other) in variant.stages.iter_mut() {
        other.canary = None;
    }
    variant.stages.set(stage, settings);
    let release = Release {
        id,
        canary: true,
        shares_stage_cache: canary.use_stage_cache,
    };
    let api = compile(Arc::new(variant), &source_dir, &release)?;
    Ok(CanaryState {
        percent: canary.percent_traffic,
        api: Arc::new(api),
    })
}

/// The request path's view of `apis` and `domains`.
fn build_served(
    apis: &[ApiReleases],
    domains: &UniqueMap<DomainDefinition>,
) -> Result<Served, Error> {
    let mut served = Vec::new();
    for (i, api) in apis.iter().enumerate() {
        let latest = api
            .history
            .back()
            .cloned()
            .ok_or_else(|| Error::Release(format!("API \"{}\" has no deployment", api.name)))?;
        if let Some(other) = apis[..i].iter().find(|o| {
            o.history
                .back()
                .is_some_and(|d| d.identity.api_id == latest.identity.api_id)
        }) {
            return Err(Error::config(
                KeyPath::root().key("apiId"),
                format!(
                    "APIs \"{}\" and \"{}\" both have the apiId \"{}\": give each API of a gateway its own",
                    other.name, api.name, latest.identity.api_id
                ),
            ));
        }
        let mut stages = Vec::new();
        for (name, state) in &api.stages {
            let main = Target::new(Arc::clone(&state.main), name)?;
            let canary = match &state.canary {
                Some(c) => Some((c.percent, Target::new(Arc::clone(&c.api), name)?)),
                None => None,
            };
            stages.push((name.clone(), Arc::new(StageView::new(main, canary))));
        }
        served.push((api.name.clone(), latest, stages));
    }
    Served::new(served, domains)
}
