//! The registry: every workload, target and fault family `netsplit` knows, by name — and the one
//! place a plan is checked against them before a run starts.
//!
//! The built-ins register exactly the way an application's own do:
//!
//! ```no_run
//! use netsplit::registry::Registry;
//! use netsplit::workload::WorkloadDef;
//! // Your own workload type goes here; a built-in one stands in for it.
//! # use netsplit::workload::register::Register as MyWorkload;
//! let registry = Registry::builtin().workload(WorkloadDef::of::<MyWorkload>());
//! std::process::exit(netsplit::cli::main_with(registry).into());
//! ```
//!
//! (`examples/unique_ids.rs` is a complete one: a workload, an in-memory target and the whole
//! command line.) [`Registry::prepare`] turns a resolved plan into a [`Prepared`] run — the
//! workload built from its options, the target's definition, the fault names checked — so a
//! plan that cannot run is refused with one line and exit 254 before anything is touched.

use crate::db::{self, DbDef};
use crate::error::bad_input;
use crate::nemesis::{families, FaultDef};
use crate::plan::Plan;
use crate::workload::{self, Instance, WorkloadArgs, WorkloadDef};
use anyhow::Result;

/// The built-in databases this build left out: each is a cargo feature of the same name
/// (Cargo.toml, `[features]`).
const LEFT_OUT: &[&str] = &[
    #[cfg(not(feature = "etcd"))]
    "etcd",
    #[cfg(not(feature = "redis"))]
    "redis",
    #[cfg(not(feature = "postgres"))]
    "postgres",
];

/// Everything netsplit can run: workloads, targets and fault families, by name.
#[derive(Clone, Default)]
pub struct Registry {
    workloads: Vec<WorkloadDef>,
    targets: Vec<DbDef>,
    faults: Vec<FaultDef>,
}

impl Registry {
    /// Nothing registered.
    pub fn empty() -> Registry {
        Registry::default()
    }

    /// The built-in workloads, targets and fault families.
    pub fn builtin() -> Registry {
        let mut r = Registry::empty()
            .workload(WorkloadDef::of::<workload::register::Register>())
            .workload(WorkloadDef::of::<workload::set::Set>())
            .workload(WorkloadDef::of::<workload::counter::Counter>())
            .workload(WorkloadDef::of::<workload::bank::Bank>())
            .workload(WorkloadDef::of::<workload::list_append::ListAppend>())
            .workload(WorkloadDef::of::<workload::rw_register::RwRegister>())
            .db(DbDef::of::<db::noop::Noop>());
        #[cfg(feature = "etcd")]
        {
            r = r.db(DbDef::of::<db::etcd::Etcd>());
        }
        #[cfg(feature = "redis")]
        {
            r = r.db(DbDef::of::<db::redis::Redis>());
        }
        #[cfg(feature = "postgres")]
        {
            r = r.db(DbDef::of::<db::postgres::Postgres>());
        }
        r = r.db(DbDef::of::<db::custom::Custom>()).db(db::noop::liar());
        for f in families::builtin() {
            r = r.fault(f);
        }
        r
    }

    /// Registers a workload (replacing one of the same name).
    pub fn workload(mut self, def: WorkloadDef) -> Registry {
        self.workloads.retain(|d| d.name != def.name);
        self.workloads.push(def);
        self
    }

    /// Registers a target (replacing one of the same name).
    pub fn db(mut self, def: DbDef) -> Registry {
        self.targets.retain(|d| d.name != def.name);
        self.targets.push(def);
        self
    }

    /// Registers a fault family (replacing one of the same name). Families heal in the order
    /// they were registered.
    pub fn fault(mut self, def: FaultDef) -> Registry {
        match self.faults.iter().position(|d| d.name == def.name) {
            Some(i) => self.faults[i] = def,
            None => self.faults.push(def),
        }
        self
    }

    /// The registered workloads, in registration order.
    pub fn workloads(&self) -> &[WorkloadDef] {
        &self.workloads
    }
    /// The registered targets (databases), in registration order.
    pub fn dbs(&self) -> &[DbDef] {
        &self.targets
    }
    /// The registered fault families, in registration order.
    pub fn faults(&self) -> &[FaultDef] {
        &self.faults
    }

    /// The workload of that name, or bad input listing the known ones.
    pub fn find_workload(&self, name: &str) -> Result<&WorkloadDef> {
        self.workloads
            .iter()
            .find(|d| d.name == name)
            .ok_or_else(|| {
                bad_input(format!(
                    "unknown workload {name:?} (known: {})",
                    names(self.workloads.iter().map(|d| &d.name))
                ))
            })
    }

    /// The target of that name, or bad input listing the known ones (or naming the cargo
    /// feature that would build a database this build left out).
    pub fn find_db(&self, name: &str) -> Result<&DbDef> {
        self.targets.iter().find(|d| d.name == name).ok_or_else(|| {
            if LEFT_OUT.contains(&name) {
                return bad_input(format!(
                    "target {name:?} is not in this build of netsplit: it was built without \
                     the cargo feature `{name}` (known: {})",
                    names(self.targets.iter().map(|d| &d.name))
                ));
            }
            bad_input(format!(
                "unknown target {name:?} (known: {})",
                names(self.targets.iter().map(|d| &d.name))
            ))
        })
    }

    /// Builds the plan's workload from its options (bad input naming the key and line).
    /// A section with `ops` is a workload written in YAML (`workload::yaml`), whatever its name.
    pub fn build_workload(&self, plan: &Plan) -> Result<Instance> {
        let args = WorkloadArgs {
            opts: &plan.workload.opts,
            run: &plan.run,
            origins: &plan.origins,
        };
        if workload::yaml::is_yaml(&plan.workload.opts) {
            return workload::yaml::def(&plan.workload.name).build(&args);
        }
        let def = self.find_workload(&plan.workload.name).map_err(|e| {
            match plan.origins.get("workload.name") {
                Some(o) => bad_input(format!("{o}: workload.name: {e}")),
                None => e,
            }
        })?;
        def.build(&args)
    }

    /// Builds a target of type `T` directly for a plan (its workload and options as a run
    /// builds them) — for tests and tools that drive one target without the runner.
    pub fn build_db_as<T: db::DbType>(
        &self,
        plan: &Plan,
        nodes: Vec<crate::control::Node>,
        remotes: Vec<std::sync::Arc<dyn crate::control::Remote>>,
    ) -> Result<T> {
        let workload = self.build_workload(plan)?.for_db();
        let mut plan = plan.for_db();
        let deploy = db::Deployment::from_plan(&plan, false, false)?;
        plan.target.opts = db::CommonOpts::strip(&plan.target.opts);
        let opts = T::options(&plan)?;
        T::build(
            db::DbEnv {
                plan,
                workload,
                nodes,
                remotes,
                deploy,
            },
            opts,
        )
    }

    /// Checks a resolved plan against the registry: the workload builds from its options, the
    /// target exists and speaks the workload's vocabulary, and the fault names are known. The
    /// resolved workload options (defaults included) are written back into the plan, so the
    /// run's `plan.yaml` records them.
    pub fn prepare(&self, plan: &Plan) -> Result<Prepared> {
        let workload = self.build_workload(plan)?;
        let target = self
            .find_db(&plan.target.name)
            .map_err(|e| match plan.origins.get("target.name") {
                Some(o) => bad_input(format!("{o}: target.name: {e}")),
                None => e,
            })?
            .clone();
        if !target.speaks(&workload.vocabulary) {
            return Err(bad_input(format!(
                "target {} does not speak workload {} (its clients speak: {})",
                target.name,
                workload.name,
                target.vocabularies.join(", ")
            )));
        }
        for f in &plan.nemesis.faults {
            let f = f.trim();
            if !["none", "all", ""].contains(&f) && !self.faults.iter().any(|d| d.name == f) {
                return Err(bad_input(format!(
                    "nemesis.faults: unknown fault {f:?} (known: {}, none, all)",
                    names(self.faults.iter().map(|d| &d.name))
                )));
            }
        }
        let mut plan = plan.clone();
        plan.workload.opts = workload
            .options
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Ok(Prepared {
            plan,
            workload,
            target,
        })
    }
}

fn names<'a>(it: impl Iterator<Item = &'a String>) -> String {
    it.map(String::as_str).collect::<Vec<_>>().join(", ")
}

/// A plan checked against the registry, ready to run.
#[derive(Clone)]
pub struct Prepared {
    /// The plan, with the workload's options complete.
    pub plan: Plan,
    /// The plan's workload, built from its options.
    pub workload: Instance,
    /// The registry's definition of the plan's target.
    pub target: DbDef,
}

impl Prepared {
    /// Builds the run's target: `db_plan` is the plan as the target sees it
    /// ([`Plan::for_db`]), `remotes[i]` reaches `nodes[i]`, and `deploy` says who deployed
    /// the database.
    pub fn build_target(
        &self,
        db_plan: db::DbPlan,
        nodes: &[crate::control::Node],
        remotes: &[std::sync::Arc<dyn crate::control::Remote>],
        deploy: db::Deployment,
    ) -> Result<std::sync::Arc<dyn db::Db>> {
        self.target.build(db::DbEnv {
            plan: db_plan,
            workload: self.workload.for_db(),
            nodes: nodes.to_vec(),
            remotes: remotes.to_vec(),
            deploy,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(target: &str, workload: &str) -> Plan {
        let mut p = Plan::default();
        p.target.name = target.into();
        p.workload.name = workload.into();
        p
    }

    #[test]
    fn unknown_names_are_bad_input_listing_the_known_ones() {
        let r = Registry::builtin();
        let e = r.prepare(&plan("etcdx", "register")).err().unwrap();
        assert!(
            e.to_string().contains("etcdx") && e.to_string().contains("noop"),
            "{e}"
        );
        assert_eq!(crate::error::exit_code_for(&e), 254);
        let e = r.prepare(&plan("noop", "nope")).err().unwrap();
        assert!(
            e.to_string().contains("nope") && e.to_string().contains("register"),
            "{e}"
        );
        let mut p = plan("noop", "register");
        p.nemesis.faults = vec!["meteor".into()];
        let e = r.prepare(&p).err().unwrap();
        assert!(e.to_string().contains("meteor"), "{e}");
    }

    /// A build without a database's feature (`.ci/run` compiles one with none) refuses a plan
    /// naming it in one line that says which feature would build it.
    #[test]
    #[cfg(not(all(feature = "etcd", feature = "redis", feature = "postgres")))]
    fn a_database_left_out_of_the_build_is_refused_naming_its_feature() {
        let r = Registry::builtin();
        assert!(!LEFT_OUT.is_empty());
        for name in LEFT_OUT {
            let e = r.prepare(&plan(name, "register")).err().unwrap();
            assert!(
                e.to_string()
                    .contains(&format!("built without the cargo feature `{name}`")),
                "{e}"
            );
            assert_eq!(crate::error::exit_code_for(&e), 254);
            assert!(r.find_db(name).is_err());
        }
        assert!(r.prepare(&plan("noop", "register")).is_ok());
        assert!(r
            .find_db("nosuch")
            .err()
            .unwrap()
            .to_string()
            .contains("unknown target"));
    }

    #[test]
    #[cfg(feature = "redis")]
    fn a_target_that_does_not_speak_the_workload_is_refused() {
        let r = Registry::builtin();
        let e = r.prepare(&plan("redis", "bank")).err().unwrap();
        assert!(
            e.to_string().contains("does not speak workload bank"),
            "{e}"
        );
        assert_eq!(crate::error::exit_code_for(&e), 254);
        assert!(r.prepare(&plan("noop", "rw-register")).is_ok());
    }

    /// A workload written later (here in YAML) that sends the register vocabulary runs on every
    /// target that speaks it — no target names it — and each target's client takes it typed.
    #[test]
    #[cfg(all(feature = "etcd", feature = "redis", feature = "postgres"))]
    fn a_new_workload_of_a_known_vocabulary_runs_on_every_target_that_speaks_it() {
        use crate::db::postgres::{ClientSettings, PgClient, PgOpts};
        use crate::db::vocab::Vocabulary;
        use crate::db::{etcd::Etcd, noop::Noop, redis::Redis, Db};
        use crate::history::OpType;
        use serde_json::json;
        let r = Registry::builtin();
        let mut p = plan("noop", "my-register");
        for (k, v) in [
            ("vocabulary", json!("register")),
            (
                "ops",
                json!([{"f": "read", "value": {"keyed": {"keys": 2, "value": null}}},
                       {"f": "write", "value": {"keyed": {"keys": 2, "value": "unique"}}}]),
            ),
            ("checker", json!({"linearizable": {"model": "register"}})),
        ] {
            p.workload.opts.insert(k.into(), v);
        }
        let node = crate::control::Node {
            name: "n1".into(),
            host: "127.0.0.1".into(),
            ssh_port: 22,
            workdir: "/tmp".into(),
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        for target in ["noop", "etcd", "redis", "postgres", "custom"] {
            p.target.name = target.into();
            assert!(r.prepare(&p).is_ok(), "{target}");
        }
        let dbs: Vec<Box<dyn Db>> = vec![
            Box::new(r.build_db_as::<Noop>(&p, vec![], vec![]).unwrap()),
            Box::new(
                r.build_db_as::<Etcd>(&p, vec![node.clone()], vec![])
                    .unwrap(),
            ),
            Box::new(
                r.build_db_as::<Redis>(&p, vec![node.clone()], vec![])
                    .unwrap(),
            ),
        ];
        let mut clients: Vec<(String, Box<dyn crate::db::Client>)> = dbs
            .iter()
            .map(|db| {
                let node = (db.name() != "noop").then_some(0);
                (db.name().to_string(), rt.block_on(db.client(node)).unwrap())
            })
            .collect();
        // postgres's deployment needs a remote per node to build; its client is what matters.
        let o = PgOpts {
            password: "pw".into(),
            ..crate::opts::Preset::preset().unwrap()
        };
        let pg = PgClient::new(
            "n1",
            "127.0.0.1",
            "127.0.0.1",
            ClientSettings::of(&o, false),
        );
        let pg = crate::db::vocab::Typed::new("postgres", Vocabulary::Register, pg).unwrap();
        clients.push(("postgres".into(), Box::new(pg)));
        for (name, mut c) in clients {
            // Read as the register vocabulary's write, before anything is sent.
            let bad = rt.block_on(c.invoke("write", &json!([1])));
            assert_eq!(bad.kind, OpType::Fail, "{name}");
            let why = bad.error.unwrap();
            assert!(
                why.contains("register write: expects [key, value]") && why.contains("not sent"),
                "{name}: {why}"
            );
        }
        // A vocabulary a target does not speak is refused before the run.
        p.target.name = "redis".into();
        p.workload.opts.insert("vocabulary".into(), json!("bank"));
        let e = r.prepare(&p).err().unwrap();
        assert!(
            e.to_string()
                .contains("does not speak workload my-register"),
            "{e}"
        );
    }

    #[test]
    fn prepared_plans_record_every_workload_option() {
        let r = Registry::builtin();
        let p = r.prepare(&plan("noop", "bank")).unwrap();
        assert_eq!(p.plan.workload.opts["accounts"], 5);
        assert_eq!(p.workload.vocabulary, "bank");
    }
}
