"""Keystone: which project at the destination receives a migrated volume or image, and the
names of projects and domains at the source (the default destination is found by them)."""
from typing import Any, Dict, List, Optional, Tuple

from .clouds import api
from .errors import NotFound, RefusedError


def resolve_project(conn: Any, name_or_id: str, domain: Optional[str] = None) -> Dict[str, Any]:
    """The destination project named (or with the id) ``name_or_id``.

    A name must be unambiguous: projects of one name in several domains are refused (pass the
    id). ``domain`` (a domain name) restricts the search: a default taken from the source
    project's name must land in the domain of the same name, never in another tenant's."""
    named = api("projects named %s" % name_or_id,
                lambda: list(conn.identity.projects(name=name_or_id)))
    if not named:
        try:
            project = api("project %s" % name_or_id, lambda: conn.identity.get_project(name_or_id))
        except NotFound:
            raise NotFound("project %r does not exist at the destination" % name_or_id) from None
        return {"id": project.id, "name": project.name,
                "domain": domain_name(conn, project.domain_id)}
    found = [(p, domain_name(conn, p.domain_id)) for p in named]
    if domain is not None:
        matching: List[Tuple[Any, Optional[str]]] = [(p, d) for p, d in found if d == domain]
        if not matching:
            raise NotFound("project %r exists at the destination only in domain %s, not in "
                           "domain %r (the source's): pass destination_project=<project id>"
                           % (name_or_id, ", ".join(sorted(str(d) for _, d in found)), domain))
        found = matching
    if len(found) > 1:
        raise RefusedError("%d projects are named %r at the destination (domains %s): pass "
                           "destination_project=<project id>" % (
                               len(found), name_or_id, ", ".join(sorted(str(d) for _, d in found))))
    project, its_domain = found[0]
    return {"id": project.id, "name": project.name, "domain": its_domain}


def project_for(conn: Any, volume: Dict[str, Any], given: Optional[str] = None) -> Dict[str, Any]:
    """The project given, else the one of the source project's name in the domain of the
    source project's domain name."""
    if given:
        return resolve_project(conn, given)
    return resolve_project(conn, volume["project_name"] or volume["project_id"],
                           domain=volume.get("project_domain"))


def domain_name(conn: Any, domain_id: Optional[str]) -> Optional[str]:
    if not domain_id:
        return None
    return api("domain %s" % domain_id, lambda: conn.identity.get_domain(domain_id)).name


def project_and_domain(conn: Any, project_id: str) -> Tuple[Optional[str], Optional[str]]:
    """The names of a source project and of its domain; (None, None) for a reader without
    identity rights, who still gets the rest of a description."""
    try:
        project = conn.identity.get_project(project_id)
        return project.name, conn.identity.get_domain(project.domain_id).name
    except Exception:
        return None, None
