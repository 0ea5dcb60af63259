//! What one instance of a component takes from wasmtime's pooling allocator: core instances,
//! linear memories and tables, read from the component's binary before any engine exists (so a
//! gateway can size the pool of its own host from its plugins), and what a plugin needs in all:
//! that much per instance times its concurrency. The same walk collects the component's
//! exports, whose world decides the engine it is compiled for.
//!
//! wasmtime instantiates a component by flattening it: every core module instantiation of the
//! component, and of every nested component each time it is instantiated, takes one core
//! instance slot, plus one memory slot per memory and one table slot per table the module
//! defines (imported ones are shared, not allocated). This walk counts the same things; the
//! tests check it against the pool's own counts for every plugin in plugins/dist.

use wasmparser::{
    ComponentAlias, ComponentExternalKind, ComponentOuterAliasKind, ComponentTypeRef, Instance,
    Parser, Payload,
};

/// Slots of wasmtime's pool that one instance (or several) of a component take.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct PoolNeeds {
    /// Component instances (one per instance; each running call also takes a stack).
    pub(crate) instances: u64,
    /// Core module instances.
    pub(crate) core_instances: u64,
    /// Linear memories.
    pub(crate) memories: u64,
    /// Tables.
    pub(crate) tables: u64,
}

impl PoolNeeds {
    /// `self` for each of `count` instances.
    pub(crate) fn times(self, count: u64) -> PoolNeeds {
        PoolNeeds {
            instances: self.instances.saturating_mul(count),
            core_instances: self.core_instances.saturating_mul(count),
            memories: self.memories.saturating_mul(count),
            tables: self.tables.saturating_mul(count),
        }
    }

    /// The needs of `self` and `other` together.
    pub(crate) fn plus(self, other: PoolNeeds) -> PoolNeeds {
        PoolNeeds {
            instances: self.instances.saturating_add(other.instances),
            core_instances: self.core_instances.saturating_add(other.core_instances),
            memories: self.memories.saturating_add(other.memories),
            tables: self.tables.saturating_add(other.tables),
        }
    }

    /// What is left of `self` once `used` is taken, or `None` when `used` does not fit.
    pub(crate) fn minus(self, used: PoolNeeds) -> Option<PoolNeeds> {
        Some(PoolNeeds {
            instances: self.instances.checked_sub(used.instances)?,
            core_instances: self.core_instances.checked_sub(used.core_instances)?,
            memories: self.memories.checked_sub(used.memories)?,
            tables: self.tables.checked_sub(used.tables)?,
        })
    }

    /// Whether `needs` fits in `self`.
    pub(crate) fn holds(self, needs: PoolNeeds) -> bool {
        self.minus(needs).is_some()
    }
}

impl std::fmt::Display for PoolNeeds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} component instances, {} core instances, {} memories and {} tables",
            self.instances, self.core_instances, self.memories, self.tables
        )
    }
}

/// What a core module or a component costs each time it is instantiated, or `None` when that
/// cannot be known from the binary (an imported module or component).
type Cost = Option<PoolNeeds>;

/// One module or component being read.
enum Frame {
    Module {
        memories: u64,
        tables: u64,
    },
    Component {
        /// The cost of instantiating each core module of the module index space.
        modules: Vec<Cost>,
        /// The cost of instantiating each component of the component index space.
        components: Vec<Cost>,
        /// What instantiating this component costs: the instantiations it performs.
        cost: Cost,
    },
}

/// What the binary of a component says before anything compiles it.
#[derive(Debug)]
pub(crate) struct ComponentFacts {
    /// The pool slots one instance takes. `None` when the binary is not a component this
    /// walk understands (it imports a module or a component): the caller then cannot size a
    /// pool from it.
    pub(crate) needs: Option<PoolNeeds>,
    /// The names the component exports (its own, not those of components nested in it): the
    /// world it serves, which decides the engine it is compiled for.
    pub(crate) exports: Vec<String>,
}

/// Reads the component in `bytes` in one walk: what one instance takes of the pool, and what
/// it exports.
pub(crate) fn read_component(bytes: &[u8]) -> Result<ComponentFacts, String> {
    let mut stack: Vec<Frame> = Vec::new();
    let mut exports = Vec::new();
    let empty = PoolNeeds {
        instances: 0,
        ..PoolNeeds::default()
    };
    let add = |total: Cost, more: Cost| -> Cost { Some(total?.plus(more?)) };
    let fail = |e: wasmparser::BinaryReaderError| format!("cannot read the component: {e}");
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(fail)?;
        match payload {
            Payload::Version { encoding, .. } => match encoding {
                wasmparser::Encoding::Module => stack.push(Frame::Module {
                    memories: 0,
                    tables: 0,
                }),
                wasmparser::Encoding::Component => stack.push(Frame::Component {
                    modules: Vec::new(),
                    components: Vec::new(),
                    cost: Some(empty),
                }),
            },
            Payload::MemorySection(reader) => {
                if let Some(Frame::Module { memories, .. }) = stack.last_mut() {
                    *memories += u64::from(reader.count());
                }
            }
            Payload::TableSection(reader) => {
                if let Some(Frame::Module { tables, .. }) = stack.last_mut() {
                    *tables += u64::from(reader.count());
                }
            }
            Payload::InstanceSection(reader) => {
                let Some(Frame::Component { modules, cost, .. }) = stack.last_mut() else {
                    continue;
                };
                for instance in reader {
                    if let Instance::Instantiate { module_index, .. } = instance.map_err(fail)? {
                        let module = modules.get(module_index as usize).copied().flatten();
                        *cost = add(*cost, module);
                    }
                }
            }
            Payload::ComponentInstanceSection(reader) => {
                let Some(Frame::Component {
                    components, cost, ..
                }) = stack.last_mut()
                else {
                    continue;
                };
                for instance in reader {
                    if let wasmparser::ComponentInstance::Instantiate {
                        component_index, ..
                    } = instance.map_err(fail)?
                    {
                        let component = components.get(component_index as usize).copied().flatten();
                        *cost = add(*cost, component);
                    }
                }
            }
            Payload::ComponentAliasSection(reader) => {
                for alias in reader {
                    let alias = alias.map_err(fail)?;
                    let (is_module, cost) = match alias {
                        ComponentAlias::Outer { kind, count, index } => {
                            let is_module = match kind {
                                ComponentOuterAliasKind::CoreModule => true,
                                ComponentOuterAliasKind::Component => false,
                                _ => continue,
                            };
                            let outer = stack
                                .len()
                                .checked_sub(1 + count as usize)
                                .and_then(|at| stack.get(at));
                            let cost = match outer {
                                Some(Frame::Component {
                                    modules,
                                    components,
                                    ..
                                }) => {
                                    let space = if is_module { modules } else { components };
                                    space.get(index as usize).copied().flatten()
                                }
                                _ => None,
                            };
                            (is_module, cost)
                        }
                        ComponentAlias::InstanceExport { kind, .. } => match kind {
                            ComponentExternalKind::Module => (true, None),
                            ComponentExternalKind::Component => (false, None),
                            _ => continue,
                        },
                        ComponentAlias::CoreInstanceExport { .. } => continue,
                    };
                    push_item(&mut stack, is_module, cost);
                }
            }
            Payload::ComponentImportSection(reader) => {
                for import in reader {
                    match import.map_err(fail)?.ty {
                        ComponentTypeRef::Module(_) => push_item(&mut stack, true, None),
                        ComponentTypeRef::Component(_) => push_item(&mut stack, false, None),
                        _ => {}
                    }
                }
            }
            Payload::ComponentExportSection(reader) => {
                // An exported module or component is a new index of its index space.
                for export in reader {
                    let export = export.map_err(fail)?;
                    if stack.len() == 1 {
                        exports.push(export.name.name.to_owned());
                    }
                    let is_module = match export.kind {
                        ComponentExternalKind::Module => true,
                        ComponentExternalKind::Component => false,
                        _ => continue,
                    };
                    let cost = match stack.last() {
                        Some(Frame::Component {
                            modules,
                            components,
                            ..
                        }) => {
                            let space = if is_module { modules } else { components };
                            space.get(export.index as usize).copied().flatten()
                        }
                        _ => None,
                    };
                    push_item(&mut stack, is_module, cost);
                }
            }
            Payload::End(_) => {
                let finished = stack.pop().ok_or("cannot read the component: unbalanced")?;
                let (is_module, cost) = match finished {
                    Frame::Module { memories, tables } => (
                        true,
                        Some(PoolNeeds {
                            instances: 0,
                            core_instances: 1,
                            memories,
                            tables,
                        }),
                    ),
                    Frame::Component { cost, .. } => (false, cost),
                };
                if stack.is_empty() {
                    let needs = if is_module {
                        None
                    } else {
                        cost.map(|c| PoolNeeds { instances: 1, ..c })
                    };
                    return Ok(ComponentFacts { needs, exports });
                }
                push_item(&mut stack, is_module, cost);
            }
            _ => {}
        }
    }
    Err("cannot read the component: it ends early".into())
}

/// Adds a module (or component) costing `cost` to the index space of the component being read.
fn push_item(stack: &mut [Frame], is_module: bool, cost: Cost) {
    if let Some(Frame::Component {
        modules,
        components,
        ..
    }) = stack.last_mut()
    {
        if is_module {
            modules.push(cost);
        } else {
            components.push(cost);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn needs(wat: &str) -> Option<PoolNeeds> {
        read_component(&wat::parse_str(wat).unwrap()).unwrap().needs
    }

    #[test]
    fn counts_instantiations_not_definitions() {
        let found = needs(
            r#"(component
                (core module $m (memory 1) (memory 2) (table 1 funcref))
                (core module $unused (memory 1))
                (core module $imports (import "m" "mem" (memory 1)) (table 2 funcref))
                (core instance $a (instantiate $m))
                (core instance $b (instantiate $m))
                (core instance $c (instantiate $imports (with "m" (instance $a))))
            )"#,
        );
        assert_eq!(
            found,
            Some(PoolNeeds {
                instances: 1,
                core_instances: 3,
                memories: 4,
                tables: 3,
            })
        );
    }

    #[test]
    fn a_nested_component_costs_what_it_instantiates_each_time() {
        let found = needs(
            r#"(component
                (core module $outer (memory 1))
                (component $inner
                    (core module $m (table 1 funcref))
                    (core instance (instantiate $m))
                    (alias outer 1 $outer (core module $from-outside))
                    (core instance (instantiate $from-outside))
                )
                (instance (instantiate $inner))
                (instance (instantiate $inner))
            )"#,
        );
        assert_eq!(
            found,
            Some(PoolNeeds {
                instances: 1,
                core_instances: 4,
                memories: 2,
                tables: 2,
            })
        );
    }

    #[test]
    fn an_imported_module_cannot_be_counted() {
        let found = needs(
            r#"(component
                (import "m" (core module $m))
                (core instance (instantiate $m))
            )"#,
        );
        assert_eq!(found, None);
    }

    #[test]
    fn a_core_module_or_garbage_is_not_a_component() {
        assert_eq!(needs("(module (memory 1))"), None);
        assert!(read_component(b"not wasm").is_err());
    }

    #[test]
    fn needs_add_multiply_and_fit() {
        let one = PoolNeeds {
            instances: 1,
            core_instances: 3,
            memories: 1,
            tables: 2,
        };
        let room = one.times(4);
        assert_eq!(room.core_instances, 12);
        assert!(room.holds(one.times(4)));
        assert!(!room.holds(one.times(5)));
        assert_eq!(room.minus(one.times(3)), Some(one));
        assert_eq!(one.plus(one), one.times(2));
    }
}
