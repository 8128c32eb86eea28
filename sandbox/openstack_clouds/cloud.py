"""One cloud from config files to healthy: services started in order, identity and volume types
set up, health checked."""
from __future__ import annotations

import json
import os
import time
from typing import Any, Callable, Dict, List, Sequence, Tuple

from sandbox_common import (
    abort_others, Clock, http_call, in_parallel, SandboxError, wait_for, write_file)
from openstack_clouds.layout import (
    BACKEND_TIMEOUT, CLOUD_BY_NAME, CloudSpec, ini, load_passwords, Paths, paths,
    PUBLIC_NETWORK, sqlite_wal, START_TIMEOUT, USERS)
from openstack_clouds.processes import proc_alive, self_in_venv, start_service, venv_step
from openstack_clouds.broker import queue_exists
from openstack_clouds.keystone import init_keystone, keystone_conf, keystone_token, wait_keystone
from openstack_clouds.glance import glance_conf
from openstack_clouds.cinder import (cinder_conf, DEFAULT_TYPE, ENCRYPTED_TYPE, ENCRYPTION,
                                     IN_PLACE_TYPE)
from openstack_clouds.nova import discover_hosts, init_nova, nova_conf, placement_conf
from openstack_clouds.neutron import init_neutron, neutron_confs


def uwsgi_conf(p: Paths, spec: CloudSpec, service: str, port: int, module: str,
               extra: Sequence[Tuple[str, Any]]) -> str:
    items: List[Tuple[str, Any]] = [
        ("http-socket", "127.0.0.1:%d" % port), ("home", p.venv), ("module", module),
        ("master", "true"), ("processes", 1), ("threads", 4), ("enable-threads", "true"),
        ("lazy-apps", "true"), ("need-app", "true"), ("die-on-term", "true"),
        ("worker-reload-mercy", 5), ("reload-mercy", 5), ("buffer-size", 65535),
        ("socket-timeout", 300),
        # http-socket closes after each response without saying so: clients reusing the
        # connection would get 'Connection reset by peer'
        ("add-header", "Connection: close"),
        ("logto", os.path.join(p.log_dir(spec.name), "%s-uwsgi.log" % service)),
        ("env", "PYTHONWARNINGS=ignore"),
    ]
    return ini([("uwsgi", items + list(extra))])


def write_configs(p: Paths, spec: CloudSpec, pw: Dict[str, str]) -> None:
    """All config files of one cloud (cheap, rewritten on every start)."""
    c = spec.name
    for sub in ("log", "keystone", "glance/staging", "glance/tasks", "glance/lock",
                "cinder/lock", "cinder/conversion", "placement", "nova/instances", "nova/lock",
                "neutron/lock"):
        os.makedirs(p.cloud(c, sub), exist_ok=True)
    write_file(p.keystone_conf(c), keystone_conf(p, spec), mode=0o600)
    write_file(p.glance_conf(c), glance_conf(p, spec, pw), mode=0o600)
    write_file(p.cinder_conf(c), cinder_conf(p, spec, pw), mode=0o600)
    write_file(os.path.join(p.placement_dir(c), "placement.conf"),
               placement_conf(p, spec, pw), mode=0o600)
    write_file(p.nova_conf(c), nova_conf(p, spec, pw), mode=0o600)
    for path, text in neutron_confs(p, spec, pw).items():
        write_file(path, text, mode=0o600)
    for project, folder in (("nova", p.nova_dir(c)), ("neutron", p.neutron_dir(c))):
        with open(os.path.join(p.venv, "etc", project, "api-paste.ini")) as handle:
            write_file(os.path.join(folder, "api-paste.ini"), handle.read())
    write_file(p.uwsgi_ini(c, "keystone"), uwsgi_conf(
        p, spec, "keystone", spec.keystone_port, "keystone.wsgi.api:application",
        [("env", "OS_KEYSTONE_CONFIG_FILES=%s" % p.keystone_conf(c))]))
    write_file(p.uwsgi_ini(c, "glance-api"), uwsgi_conf(
        p, spec, "glance-api", spec.glance_port, "glance.wsgi.api:application",
        [("env", "OS_GLANCE_CONFIG_DIR=%s" % p.glance_dir(c)), ("http-chunked-input", "true"),
         ("http-raw-body", "true"), ("chunked-input-limit", 4096000)]))
    write_file(p.uwsgi_ini(c, "cinder-api"), uwsgi_conf(
        p, spec, "cinder-api", spec.cinder_port, "cinder.wsgi.api:application",
        [("pyargv", "--config-file %s --log-file %s"
          % (p.cinder_conf(c), os.path.join(p.log_dir(c), "cinder-api.log")))]))
    write_file(p.uwsgi_ini(c, "placement-api"), uwsgi_conf(
        p, spec, "placement-api", spec.placement_port, "placement.wsgi.api:application",
        [("env", "OS_PLACEMENT_CONFIG_DIR=%s" % p.placement_dir(c))]))
    # nova-api reads its paste config from the FIRST of OS_NOVA_CONFIG_FILES
    write_file(p.uwsgi_ini(c, "nova-api"), uwsgi_conf(
        p, spec, "nova-api", spec.nova_port, "nova.wsgi.osapi_compute:application",
        [("env", "OS_NOVA_CONFIG_DIR=%s" % p.nova_dir(c)),
         ("env", "OS_NOVA_CONFIG_FILES=api-paste.ini;nova.conf"),
         ("pyargv", "--log-file %s" % os.path.join(p.log_dir(c), "nova-api.log"))]))
    write_file(p.uwsgi_ini(c, "neutron-api"), uwsgi_conf(
        p, spec, "neutron-api", spec.neutron_port, "neutron.wsgi.api:application",
        [("env", "OS_NEUTRON_CONFIG_DIR=%s" % p.neutron_dir(c)),
         ("env", "OS_NEUTRON_CONFIG_FILES=neutron.conf;ml2_conf.ini"),
         ("pyargv", "--log-file %s" % os.path.join(p.log_dir(c), "neutron-api.log"))]))


def db_sync(p: Paths, spec: CloudSpec, project: str) -> None:
    if project == "glance":
        argv = [p.bin("glance-manage"), "--config-file", p.glance_conf(spec.name), "db_sync"]
    elif project == "placement":
        argv = [p.bin("placement-manage"), "--config-file",
                os.path.join(p.placement_dir(spec.name), "placement.conf"), "db", "sync"]
    else:
        argv = [p.bin("cinder-manage"), "--config-file", p.cinder_conf(spec.name), "db", "sync"]
    venv_step(p, spec, argv, "%s-db-sync.out" % project, "%s db sync" % project, 300)
    sqlite_wal(p.db(spec.name, project))


def start_cloud_services(p: Paths, spec: CloudSpec, pw: Dict[str, str], fresh: bool,
                         clock: Clock) -> None:
    """Keystone, Glance, Cinder, Placement, Nova's API and Neutron chains in parallel;
    databases first when FRESH. cinder-scheduler starts before cinder-volume so that it hears
    the first capabilities. Nova's other services wait for the service users (start_compute)."""
    c = spec.name
    chains = (   # (database step, what it did, services in start order)
        (lambda: init_keystone(p, spec, pw), "keystone db, keys, bootstrap", ("keystone",)),
        (lambda: db_sync(p, spec, "glance"), "glance db", ("glance-api",)),
        (lambda: db_sync(p, spec, "cinder"), "cinder db",
         ("cinder-scheduler", "cinder-api", "cinder-volume")),
        (lambda: db_sync(p, spec, "placement"), "placement db", ("placement-api",)),
        (lambda: init_nova(p, spec), "nova dbs and cells", ("nova-api",)),
        (lambda: init_neutron(p, spec), "neutron db", ("neutron-api",)),
    )

    def chain(init: Callable[[], None], done: str, services: Sequence[str]) -> None:
        if fresh:
            init()
            clock.log("%s: %s done" % (c, done))
        for service in services:
            start_service(p, spec, service)

    in_parallel([lambda ch=ch: chain(*ch) for ch in chains])
    clock.log("%s: services started" % c)


def run_setup(p: Paths, spec: CloudSpec) -> Dict[str, Any]:
    """Users, projects, roles, endpoints and volume types (this script's _setup-cloud in the
    venv, with openstacksdk); idempotent. Returns its JSON facts."""
    out = venv_step(p, spec, self_in_venv(p, "_setup-cloud", spec), "setup.out",
                    "identity/volume type setup", START_TIMEOUT + 60,
                    CEPH_MIGRATE_OPENSTACK_DIR=p.root)
    facts = json.loads(out.stdout.strip().splitlines()[-1])
    write_file(p.setup_facts(spec.name), json.dumps(facts, indent=2) + "\n")
    return facts


def compute_health(spec: CloudSpec, token: str) -> Tuple[bool, str, Dict[str, Any]]:
    """nova-compute is up and its resource provider has inventory in Placement, Neutron
    answers and the external network exists."""
    info: Dict[str, Any] = {}
    status, _, data = http_call("GET", spec.nova_url + "/os-services?binary=nova-compute",
                                token=token)
    if status != 200:
        return False, "nova: os-services HTTP %s %s" % (status, str(data)[:120]), info
    up = [s.get("host") for s in (data or {}).get("services", []) if s.get("state") == "up"
          and s.get("status") == "enabled"]
    info["nova_compute_up"] = up
    if spec.compute_host not in up:
        return False, "nova: nova-compute %s not up" % spec.compute_host, info
    status, _, data = http_call("GET", "%s/resource_providers?name=%s"
                                % (spec.placement_url, spec.compute_host), token=token)
    providers = (data or {}).get("resource_providers", []) if status == 200 else []
    if not providers:
        return False, "placement: no resource provider %s yet" % spec.compute_host, info
    status, _, data = http_call("GET", "%s/resource_providers/%s/inventories"
                                % (spec.placement_url, providers[0]["uuid"]), token=token)
    if "VCPU" not in ((data or {}).get("inventories") or {} if status == 200 else {}):
        return False, "placement: %s has no VCPU inventory yet" % spec.compute_host, info
    status, _, data = http_call("GET", "%s/v2.0/networks?name=%s"
                                % (spec.neutron_url, PUBLIC_NETWORK), token=token)
    if status != 200:
        return False, "neutron: list networks HTTP %s %s" % (status, str(data)[:120]), info
    info["public_network"] = [n["id"] for n in (data or {}).get("networks", [])]
    if not info["public_network"]:
        return False, "neutron: no network %s" % PUBLIC_NETWORK, info
    return True, "ok", info


def cloud_health(p: Paths, spec: CloudSpec, pw: Dict[str, str],
                 all_users: bool = True) -> Dict[str, Any]:
    """Tokens for every user, Glance lists images, Cinder's scheduler knows the backend pool
    and cinder-volume is up, nova-compute is up and in Placement, Neutron has the external
    network. Cheap enough for `status`."""
    info: Dict[str, Any] = {"ok": False}
    users = list(USERS) if all_users else ["admin"]
    token, body = None, {}
    for user in users:
        project = USERS[user][0]
        t, b = keystone_token(spec, user, pw.get(user, ""), project)
        if t is None:
            info["reason"] = "keystone: no token for %s (%s)" % (user, b.get("error"))
            return info
        if user == "admin":
            token, body = t, b
    project_id = body.get("project", {}).get("id")
    info["keystone"] = "ok"
    status, _, data = http_call("GET", spec.glance_url + "/v2/images?limit=1", token=token)
    if status != 200:
        info["reason"] = "glance: list images HTTP %s %s" % (status, str(data)[:120])
        return info
    status, _, data = http_call("GET", spec.glance_url + "/v2/info/stores", token=token)
    info["glance_stores"] = [s.get("id") for s in (data or {}).get("stores", [])] \
        if status == 200 else []
    base = "%s/v3/%s" % (spec.cinder_url, project_id)
    status, _, data = http_call("GET", base + "/scheduler-stats/get_pools", token=token)
    if status != 200:
        info["reason"] = "cinder: get_pools HTTP %s %s" % (status, str(data)[:120])
        return info
    pools = [x.get("name") for x in (data or {}).get("pools", [])]
    info["cinder_pools"] = pools
    status, _, data = http_call("GET", base + "/os-services?binary=cinder-volume", token=token)
    volume_up = [s.get("host") for s in (data or {}).get("services", [])
                 if status == 200 and s.get("state") == "up" and s.get("status") == "enabled"]
    info["cinder_volume_up"] = volume_up
    missing = [h for h in spec.manage_hosts if h not in pools]
    down = ["%s@%s" % (spec.cinder_host, b) for b, _ in spec.backends
            if "%s@%s" % (spec.cinder_host, b) not in volume_up]
    if missing:
        info["reason"] = "cinder: scheduler has no pool %s yet (has %s)" % (missing, pools)
        return info
    if down:
        info["reason"] = "cinder: cinder-volume %s not up" % down
        return info
    ok, reason, compute = compute_health(spec, token or "")
    info.update(compute, ok=ok, reason=reason)
    return info


def start_compute(p: Paths, spec: CloudSpec, fresh: bool, clock: Clock) -> None:
    """nova-conductor and nova-scheduler once the service users exist (they exit when Placement
    refuses their credentials); nova-compute once the conductor's queue exists (its first call
    to a conductor not yet listening is lost: a 10 s RPC timeout); then, on a fresh cloud, the
    compute host mapped into cell1 as soon as it registered."""
    start_service(p, spec, "nova-conductor")
    start_service(p, spec, "nova-scheduler")
    wait_for(lambda: (queue_exists(spec, "conductor"), "no queue conductor"), START_TIMEOUT,
             "%s nova-conductor" % spec.name, interval=0.3)
    compute = start_service(p, spec, "nova-compute")
    clock.log("%s: nova-conductor listening, nova-compute started" % spec.name)
    if fresh:
        token = keystone_token(spec, "admin", load_passwords(p)[spec.name]["admin"], "admin")[0]

        def registered() -> Tuple[bool, str]:
            if not proc_alive(p, compute):
                raise SandboxError("%s nova-compute exited (see %s)" % (
                    spec.name, os.path.join(p.log_dir(spec.name), "nova-compute.log")))
            status, _, data = http_call(
                "GET", spec.nova_url + "/os-services?binary=nova-compute", token=token)
            hosts = [s.get("host") for s in (data or {}).get("services", [])] \
                if status == 200 else []
            return spec.compute_host in hosts, "nova-compute not registered (%s)" % status
        wait_for(registered, START_TIMEOUT, "%s nova-compute" % spec.name, interval=0.5)
        discover_hosts(p, spec)
        clock.log("%s: compute host %s mapped to cell1" % (spec.name, spec.compute_host))


def bring_up_cloud(p: Paths, spec: CloudSpec, pw: Dict[str, str], fresh: bool,
                   clock: Clock) -> Dict[str, Any]:
    """One cloud from configs to healthy; runs in its own thread, sets ABORT on failure."""
    with abort_others():
        write_configs(p, spec, pw)
        start_cloud_services(p, spec, pw, fresh, clock)
        wait_keystone(spec)
        clock.log("%s: keystone answering" % spec.name)
        facts = run_setup(p, spec)
        write_file(p.initialised(spec.name), "%d\n" % int(time.time()))
        clock.log("%s: users, projects, endpoints, volume types, networks ready" % spec.name)
        start_compute(p, spec, fresh, clock)

        def check() -> Tuple[bool, str]:
            h = cloud_health(p, spec, pw)
            return h["ok"], h["reason"]
        wait_for(check, BACKEND_TIMEOUT, "%s health" % spec.name, interval=0.5)
        clock.log("%s: healthy (tokens, glance, cinder pool %s, cinder-volume up, "
                  "nova-compute %s up, network %s)"
                  % (spec.name, spec.manage_host, spec.compute_host, PUBLIC_NETWORK))
        return facts


def external_network(net: Any, spec: CloudSpec, admin_project: str) -> Dict[str, str]:
    """The cloud's external network (flat, physnet `public`) and its subnet, as an operator
    makes them; waits for neutron-api, which starts beside Keystone."""
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            network = net.find_network(PUBLIC_NETWORK)
            break
        except Exception as exc:  # noqa: B902 - neutron-api still starting
            if time.monotonic() > deadline:
                raise SystemExit("neutron-api not answering: %s" % exc)
            time.sleep(0.5)
    if network is None:
        network = net.create_network(
            name=PUBLIC_NETWORK, is_router_external=True, is_shared=False,
            provider_network_type="flat", provider_physical_network=PUBLIC_NETWORK,
            project_id=admin_project)
    subnets = list(net.subnets(network_id=network.id))
    if not subnets:
        subnets = [net.create_subnet(network_id=network.id, name=PUBLIC_NETWORK + "-subnet",
                                     ip_version=4, cidr=spec.public_cidr, is_dhcp_enabled=False,
                                     project_id=admin_project)]
    return {"id": network.id, "subnet_id": subnets[0].id, "cidr": spec.public_cidr}


def setup_cloud_main(cloud: str) -> int:
    """(venv) Idempotent identity and volume type setup with openstacksdk; prints JSON."""
    import openstack  # venv only

    p = paths()
    spec = CLOUD_BY_NAME[cloud]
    pw = load_passwords(p)[cloud]

    def connect() -> Any:
        return openstack.connect(
            auth_url=spec.auth_url, username="admin", password=pw["admin"],
            project_name="admin", user_domain_id="default", project_domain_id="default",
            region_name=spec.region, interface="public", identity_api_version="3",
            load_yaml_config=False, load_envvars=False)

    idc = connect().identity
    roles = {r.name: r for r in idc.roles()}
    if "service" not in roles:
        roles["service"] = idc.create_role(name="service")
    projects = {}
    for name in ("admin", "service", "tenant"):
        projects[name] = idc.find_project(name, domain_id="default") or idc.create_project(
            name=name, domain_id="default", description="ceph_migrate sandbox %s" % name)
    users = {}
    for name, (project, role_names) in USERS.items():
        user = idc.find_user(name, domain_id="default")
        if user is None:
            user = idc.create_user(name=name, password=pw[name], domain_id="default",
                                   default_project_id=projects[project].id)
        elif name != "admin":
            idc.update_user(user, password=pw[name])
        for role in role_names:
            idc.assign_project_role_to_user(projects[project], user, roles[role])
        users[name] = user.id
    # the pack manages volumes as this admin scoped to the tenant's project (see README)
    idc.assign_project_role_to_user(projects["tenant"], users["admin"], roles["admin"])
    services = {s.type: s for s in idc.services()}
    volume_url = spec.cinder_url + "/v3/%(project_id)s"
    for type_, name, url in (("image", "glance", spec.glance_url),
                             ("block-storage", "cinder", volume_url),
                             ("volumev3", "cinderv3", volume_url),
                             ("compute", "nova", spec.nova_url),
                             ("placement", "placement", spec.placement_url),
                             ("network", "neutron", spec.neutron_url)):
        svc = services.get(type_) or idc.create_service(type=type_, name=name, enabled=True)
        have = {e.interface for e in idc.endpoints(service_id=svc.id)}
        for iface in ("public", "internal", "admin"):
            if iface not in have:
                idc.create_endpoint(service_id=svc.id, interface=iface, url=url,
                                    region_id=spec.region)

    bs = connect().block_storage   # a new token: its catalog has the endpoints made above
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            types = {t.name: t for t in bs.types()}
            break
        except Exception as exc:  # noqa: B902 - cinder-api still starting
            if time.monotonic() > deadline:
                raise SystemExit("cinder-api not answering: %s" % exc)
            time.sleep(0.5)
    wanted = [(DEFAULT_TYPE, spec.cinder_backend, "Ceph RBD (%s)" % spec.cinder_pool),
              (ENCRYPTED_TYPE, spec.cinder_backend,
               "Ceph RBD, LUKS encrypted (%s)" % spec.cinder_pool)]
    if spec.in_place_pool:
        wanted.append((IN_PLACE_TYPE, spec.in_place_pool,
                       "Ceph RBD, the mirrored pool (%s)" % spec.in_place_pool))
    for name, backend, desc in wanted:
        if name not in types:
            types[name] = bs.create_type(name=name, description=desc, is_public=True,
                                         extra_specs={"volume_backend_name": backend})
    enc = bs.get_type_encryption(types[ENCRYPTED_TYPE])
    if not getattr(enc, "encryption_id", None):
        bs.create_type_encryption(types[ENCRYPTED_TYPE], **ENCRYPTION)
    public = external_network(connect().network, spec, projects["admin"].id)
    print(json.dumps({
        "projects": {k: v.id for k, v in projects.items()},
        "users": users,
        "volume_types": {name: types[name].id for name, _, _ in wanted},
        "public_network": public,
    }))
    return 0
