//! What one instance of a component would hold: its core instances,
//! linear memories and tables, counted from the binary before it is
//! compiled, so an upload over the per-component caps is refused with
//! numbers instead of failing later in the pool.
//!
//! The count follows instantiation, not definition: a module instantiated
//! twice counts twice, and a nested component instantiated twice counts its
//! whole shape twice, as wasmtime's own accounting does. A module reached
//! only through an instance's export or a nested component's import counts
//! as nothing here; [`ComponentShape::refined`] takes the memories and
//! tables from the compiled component, and wasmtime's own checks (the
//! pool's at compile, the store's at instantiation) bound what remains.

use wasmparser::{
    ComponentAlias, ComponentExternalKind, ComponentInstance, ComponentOuterAliasKind, ComponentTypeRef, Instance,
    Parser, Payload,
};

use super::error::LoadError;
use super::limits::ComponentCaps;

/// What one instance of a component holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ComponentShape {
    /// Core module instances.
    pub core_instances: u64,
    /// Linear memories defined by those instances.
    pub memories: u64,
    /// Tables defined by those instances.
    pub tables: u64,
}

impl ComponentShape {
    fn add(&mut self, other: ComponentShape) {
        self.core_instances = self.core_instances.saturating_add(other.core_instances);
        self.memories = self.memories.saturating_add(other.memories);
        self.tables = self.tables.saturating_add(other.tables);
    }

    /// This shape, with memories and tables as wasmtime counts them in the
    /// compiled component (exact, through every alias and import).
    pub(crate) fn refined(self, component: &wasmtime::component::Component) -> ComponentShape {
        match component.resources_required() {
            Some(required) => ComponentShape {
                memories: self.memories.max(u64::from(required.num_memories)),
                tables: self.tables.max(u64::from(required.num_tables)),
                ..self
            },
            None => self,
        }
    }

    /// Refuses a shape over any of `caps`, naming the first cap exceeded.
    pub(crate) fn check(&self, caps: &ComponentCaps) -> Result<(), LoadError> {
        for (what, count, limit) in [
            ("core instances", self.core_instances, caps.core_instances),
            ("linear memories", self.memories, caps.memories),
            ("tables", self.tables, caps.tables),
        ] {
            if count > limit as u64 {
                return Err(LoadError::TooComplex { what, count, limit });
            }
        }
        Ok(())
    }
}

/// A module or component being read, innermost last.
enum Scope {
    Module(ComponentShape),
    Component {
        /// The core module index space: what instantiating each one adds.
        modules: Vec<ComponentShape>,
        /// The component index space: what instantiating each one adds.
        components: Vec<ComponentShape>,
        /// What instantiating this component holds.
        total: ComponentShape,
    },
}

fn component() -> Scope {
    Scope::Component { modules: Vec::new(), components: Vec::new(), total: ComponentShape::default() }
}

/// Counts what one instance of the component in `bytes` holds. Indices that
/// point nowhere count as nothing: such a binary fails validation anyway.
pub fn component_shape(bytes: &[u8]) -> Result<ComponentShape, LoadError> {
    let invalid = |e: wasmparser::BinaryReaderError| LoadError::Invalid(e.to_string());
    let mut stack: Vec<Scope> = Vec::new();
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.map_err(invalid)? {
            Payload::Version { encoding: wasmparser::Encoding::Component, .. } => stack.push(component()),
            Payload::Version { encoding: wasmparser::Encoding::Module, .. } => {
                stack.push(Scope::Module(ComponentShape { core_instances: 1, ..ComponentShape::default() }));
            }
            Payload::MemorySection(reader) => {
                if let Some(Scope::Module(shape)) = stack.last_mut() {
                    shape.memories = shape.memories.saturating_add(u64::from(reader.count()));
                }
            }
            Payload::TableSection(reader) => {
                if let Some(Scope::Module(shape)) = stack.last_mut() {
                    shape.tables = shape.tables.saturating_add(u64::from(reader.count()));
                }
            }
            Payload::InstanceSection(reader) => {
                let Some(Scope::Component { modules, total, .. }) = stack.last_mut() else { continue };
                for instance in reader {
                    if let Instance::Instantiate { module_index, .. } = instance.map_err(invalid)? {
                        total.add(lookup(modules, module_index));
                    }
                }
            }
            Payload::ComponentInstanceSection(reader) => {
                let Some(Scope::Component { components, total, .. }) = stack.last_mut() else { continue };
                for instance in reader {
                    if let ComponentInstance::Instantiate { component_index, .. } = instance.map_err(invalid)? {
                        total.add(lookup(components, component_index));
                    }
                }
            }
            Payload::ComponentAliasSection(reader) => {
                for alias in reader {
                    let alias = alias.map_err(invalid)?;
                    let (module, shape) = match alias {
                        ComponentAlias::Outer { kind: ComponentOuterAliasKind::CoreModule, count, index } => {
                            (true, outer(&stack, count, index, true))
                        }
                        ComponentAlias::Outer { kind: ComponentOuterAliasKind::Component, count, index } => {
                            (false, outer(&stack, count, index, false))
                        }
                        // An export of an instance: already counted where
                        // that instance was made; instantiating it again is
                        // not something a host-provided instance allows.
                        ComponentAlias::InstanceExport { kind: ComponentExternalKind::Module, .. } => {
                            (true, ComponentShape::default())
                        }
                        ComponentAlias::InstanceExport { kind: ComponentExternalKind::Component, .. } => {
                            (false, ComponentShape::default())
                        }
                        _ => continue,
                    };
                    push(&mut stack, module, shape);
                }
            }
            Payload::ComponentImportSection(reader) => {
                for import in reader {
                    match import.map_err(invalid)?.ty {
                        ComponentTypeRef::Module(_) => push(&mut stack, true, ComponentShape::default()),
                        ComponentTypeRef::Component(_) => push(&mut stack, false, ComponentShape::default()),
                        _ => {}
                    }
                }
            }
            Payload::ComponentExportSection(reader) => {
                for export in reader {
                    let export = export.map_err(invalid)?;
                    let Some(Scope::Component { modules, components, .. }) = stack.last_mut() else { continue };
                    match export.kind {
                        ComponentExternalKind::Module => modules.push(lookup(modules, export.index)),
                        ComponentExternalKind::Component => components.push(lookup(components, export.index)),
                        _ => {}
                    }
                }
            }
            Payload::End(_) => {
                let finished = stack.pop();
                let shape = match finished {
                    Some(Scope::Module(shape)) => (true, shape),
                    Some(Scope::Component { total, .. }) => (false, total),
                    None => continue,
                };
                if stack.is_empty() {
                    return Ok(shape.1);
                }
                push(&mut stack, shape.0, shape.1);
            }
            _ => {}
        }
    }
    Err(LoadError::Invalid("the component ends early".into()))
}

fn lookup(space: &[ComponentShape], index: u32) -> ComponentShape {
    usize::try_from(index).ok().and_then(|i| space.get(i)).copied().unwrap_or_default()
}

/// The shape of a module or component `count` components out from here.
fn outer(stack: &[Scope], count: u32, index: u32, module: bool) -> ComponentShape {
    let components = stack.iter().rev().filter(|s| matches!(s, Scope::Component { .. }));
    match components.clone().nth(usize::try_from(count).unwrap_or(usize::MAX)) {
        Some(Scope::Component { modules, components, .. }) => {
            lookup(if module { modules } else { components }, index)
        }
        _ => ComponentShape::default(),
    }
}

/// Adds a module (`module`) or component to the innermost component's index space.
fn push(stack: &mut [Scope], module: bool, shape: ComponentShape) {
    if let Some(Scope::Component { modules, components, .. }) = stack.last_mut() {
        if module { modules.push(shape) } else { components.push(shape) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(wat: &str) -> ComponentShape {
        component_shape(&wat::parse_str(wat).expect("wat")).expect("shape")
    }

    #[test]
    fn counts_instantiations_not_definitions() {
        let s = shape(
            r#"(component
                (core module $m (memory 1) (table 1 funcref))
                (core module $unused (memory 1) (memory 1))
                (core instance (instantiate $m))
                (core instance (instantiate $m))
            )"#,
        );
        assert_eq!(s, ComponentShape { core_instances: 2, memories: 2, tables: 2 });
    }

    #[test]
    fn a_nested_component_counts_once_per_instantiation() {
        let s = shape(
            r#"(component
                (component $inner
                    (core module $m (memory 1))
                    (core instance (instantiate $m))
                    (core instance (instantiate $m))
                )
                (instance (instantiate $inner))
                (instance (instantiate $inner))
                (instance (instantiate $inner))
            )"#,
        );
        assert_eq!(s, ComponentShape { core_instances: 6, memories: 6, tables: 0 });
    }

    #[test]
    fn outer_aliases_resolve_to_the_outer_module() {
        let s = shape(
            r#"(component
                (core module $m (memory 1) (memory 1))
                (component $inner
                    (alias outer 1 $m (core module $aliased))
                    (core instance (instantiate $aliased))
                )
                (instance (instantiate $inner))
            )"#,
        );
        assert_eq!(s, ComponentShape { core_instances: 1, memories: 2, tables: 0 });
    }

    #[test]
    fn caps_name_what_is_exceeded() {
        let caps = ComponentCaps { core_instances: 1, memories: 4, tables: 4 };
        let over = ComponentShape { core_instances: 2, memories: 0, tables: 0 };
        let error = over.check(&caps).expect_err("over the cap");
        assert!(matches!(error, LoadError::TooComplex { what: "core instances", count: 2, limit: 1 }), "{error}");
    }
}
