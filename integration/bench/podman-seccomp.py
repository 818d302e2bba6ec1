#!/usr/bin/env python3
"""Print podman's default seccomp profile (/usr/share/containers/seccomp.json) in the OCI
form podman writes into config.json for a default container on x86_64: the syscall groups
kept are those whose includes/excludes match amd64 and podman's default capabilities."""
import json
import sys

CAPS = {"CAP_" + c for c in ("CHOWN DAC_OVERRIDE FOWNER FSETID KILL NET_BIND_SERVICE SETFCAP "
                             "SETGID SETPCAP SETUID SYS_CHROOT").split()}
src = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/containers/seccomp.json"
d = json.load(open(src))
arches = []
for m in d.get("archMap") or []:
    if m["architecture"] == "SCMP_ARCH_X86_64":
        arches = [m["architecture"]] + (m.get("subArchitectures") or [])
rules = []
for s in d.get("syscalls") or []:
    inc, exc = s.get("includes") or {}, s.get("excludes") or {}
    if inc.get("arches") and "amd64" not in inc["arches"]:
        continue
    if "amd64" in (exc.get("arches") or []):
        continue
    if not all(c in CAPS for c in inc.get("caps") or []):
        continue
    if any(c in CAPS for c in exc.get("caps") or []):
        continue
    r = {"names": s["names"], "action": s["action"]}
    if s.get("errnoRet") is not None:
        r["errnoRet"] = s["errnoRet"]
    if s.get("args"):
        r["args"] = s["args"]
    rules.append(r)
json.dump({"defaultAction": d["defaultAction"], "defaultErrnoRet": d.get("defaultErrnoRet"),
           "architectures": arches, "syscalls": rules}, sys.stdout)
