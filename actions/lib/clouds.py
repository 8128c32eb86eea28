"""Talking to OpenStack: connections from the pack configuration and every API call's errors
turned into the pack's (openstacksdk only, never the CLIs).

Each cloud is a clouds.yaml entry or an auth mapping. Connections are made per action run, so a
multi-hour migration never holds an expiring token. ``openstack`` is imported lazily: the Ceph
actions never pay for it.
"""
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Mapping, Optional, TypeVar

from .config_values import DEFAULTS, default, flag, number
from .errors import CephMigrateError, ConfigError, NotFound

AUTH_KEYS = ("auth_url", "username", "password", "project_name", "project_id",
             "user_domain_name", "project_domain_name")


T = TypeVar("T")


class OpenStackError(CephMigrateError):
    """An OpenStack API call failed; the message is the service's own, without credentials."""


def api(what: str, call: Callable[[], T]) -> T:
    """Run one openstacksdk call; its exceptions become the pack's, with the service's words."""
    import keystoneauth1.exceptions as ksexc
    import openstack.exceptions as osexc

    try:
        return call()
    except osexc.NotFoundException as exc:
        raise NotFound("%s: not found (%s)" % (what, _message(exc))) from None
    except (osexc.SDKException, ksexc.ClientException) as exc:
        raise OpenStackError("%s failed: %s" % (what, _message(exc))) from None


def _message(exc: Exception) -> str:
    return str(getattr(exc, "details", None) or exc).strip()


@dataclass(frozen=True)
class CloudSettings:
    role: str                                   # "source", "destination", ...
    cloud: Optional[str]                        # clouds.yaml entry
    clouds_yaml: Optional[str]
    auth: Dict[str, str] = field(repr=False)
    region_name: Optional[str]
    interface: str
    cacert: Optional[str]
    insecure: bool
    timeout: float                              # seconds any one API request may take

    @classmethod
    def from_config(cls, section: Any, role: str) -> "CloudSettings":
        usable = isinstance(section, Mapping) and (section.get("cloud") or section.get("auth_url"))
        if not usable:
            raise ConfigError("%s_cloud needs either 'cloud' (a clouds.yaml entry) or "
                              "'auth_url' with credentials" % role)
        auth = {k: str(section.get(k) or default("cloud." + k)) for k in AUTH_KEYS
                if section.get(k) or "cloud." + k in DEFAULTS}
        return cls(role=role, cloud=section.get("cloud") or None,
                   clouds_yaml=section.get("clouds_yaml") or None, auth=auth,
                   region_name=section.get("region_name") or None,
                   interface=section.get("interface") or default("cloud.interface"),
                   cacert=section.get("cacert") or None,
                   insecure=flag(section.get("insecure"), "%s_cloud.insecure" % role,
                                 default("cloud.insecure")),
                   timeout=number(section.get("timeout"), "%s_cloud.timeout" % role,
                                  default("cloud.timeout"), 1, 600))

    def connect(self, project_id: Optional[str] = None) -> Any:
        """A connection; ``project_id`` scopes the same user to another project (the tenant's)."""
        import openstack
        import openstack.config

        overrides: Dict[str, Any] = {}
        if project_id:
            overrides = {"project_id": project_id, "project_name": None,
                         "project_domain_name": None, "project_domain_id": None}
        try:
            if self.cloud:
                config = openstack.config.OpenStackConfig(
                    config_files=[self.clouds_yaml] if self.clouds_yaml else None)
                extra: Dict[str, Any] = dict(_verify(self))
                if overrides:
                    extra["auth"] = overrides       # merged into the entry's auth by get_one
                region = config.get_one(cloud=self.cloud, region_name=self.region_name,
                                        interface=self.interface, **extra)
                return openstack.connection.Connection(config=region)
            auth = {k: v for k, v in dict(self.auth, **overrides).items() if v is not None}
            return openstack.connect(auth=auth, auth_type="password",
                                     region_name=self.region_name, interface=self.interface,
                                     **_verify(self))
        except Exception as exc:   # openstacksdk raises many types; the message is what counts
            raise OpenStackError("cannot connect to the %s cloud: %s" % (self.role, exc)) from None


def _verify(cloud: CloudSettings) -> Dict[str, Any]:
    """TLS and the per-request bound (an API that accepts and never answers fails the step
    after ``timeout`` seconds instead of holding it until StackStorm kills it)."""
    options: Dict[str, Any] = {"api_timeout": cloud.timeout}
    if cloud.insecure:
        options["verify"] = False
    elif cloud.cacert:
        options["cacert"] = cloud.cacert
    return options
