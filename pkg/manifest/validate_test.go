package manifest

import (
	"strings"
	"testing"
)

func TestValidateErrors(t *testing.T) {
	tests := []struct {
		name     string
		manifest string
		field    string // the field path the error names
		detail   string // somewhere in the error, after the field path
	}{
		// metadata
		{"name required", strings.Replace(containerYAML(""), "  name: web\n", "  labels: {app: web}\n", 1),
			"metadata.name", "Required value"},
		{"name not a DNS subdomain", strings.Replace(containerYAML(""), "name: web", "name: Web_1", 1),
			"metadata.name", `Invalid value: "Web_1": a lowercase RFC 1123 subdomain`},
		{"static name too long", strings.Replace(containerYAML(""), "name: web", "name: "+strings.Repeat("a", 250), 1),
			"metadata.name", `with the node name appended, "` + strings.Repeat("a", 250) + `-node1": must be no more than 253 characters`},
		{"namespace not a DNS label", strings.Replace(containerYAML(""), "  name: web\n", "  name: web\n  namespace: kube.system\n", 1),
			"metadata.namespace", `Invalid value: "kube.system"`},
		{"label value", strings.Replace(containerYAML(""), "  name: web\n", "  name: web\n  labels: {app: -web}\n", 1),
			"metadata.labels[app]", `Invalid value: "-web"`},
		{"label key", strings.Replace(containerYAML(""), "  name: web\n", "  name: web\n  labels: {a/b/c: web}\n", 1),
			"metadata.labels", `Invalid value: "a/b/c"`},
		{"health-gated not a boolean", strings.Replace(containerYAML(""), "  name: web\n", "  name: web\n  annotations: {berth.io/health-gated: \"yes\"}\n", 1),
			"metadata.annotations[berth.io/health-gated]", `Unsupported value: "yes"`},
		{"ready deadline not a duration", strings.Replace(containerYAML(""), "  name: web\n", "  name: web\n  annotations: {berth.io/ready-deadline: 5 minutes}\n", 1),
			"metadata.annotations[berth.io/ready-deadline]", `Invalid value: "5 minutes": must be a positive duration`},
		{"min ready negative", strings.Replace(containerYAML(""), "  name: web\n", "  name: web\n  annotations: {berth.io/min-ready: -1s}\n", 1),
			"metadata.annotations[berth.io/min-ready]", `Invalid value: "-1s"`},

		// pod spec
		{"no container", podYAML("  containers: []\n"), "spec.containers", "Required value"},
		{"restartPolicy", containerYAML("  restartPolicy: Sometimes\n"), "spec.restartPolicy", `Unsupported value: "Sometimes"`},
		{"dnsPolicy", containerYAML("  dnsPolicy: Cluster\n"), "spec.dnsPolicy", `Unsupported value: "Cluster"`},
		{"dnsPolicy None without nameservers", containerYAML("  dnsPolicy: None\n  dnsConfig: {searches: [lan]}\n"),
			"spec.dnsConfig.nameservers", "Required value: at least one nameserver"},
		{"negative terminationGracePeriodSeconds", containerYAML("  terminationGracePeriodSeconds: -1\n"),
			"spec.terminationGracePeriodSeconds", "Invalid value: -1: must be greater than or equal to 0"},
		{"imagePullSecrets", containerYAML("  imagePullSecrets: [{name: regcred}]\n"),
			"spec.imagePullSecrets", "Forbidden: static pods cannot reference API objects"},
		{"ephemeralContainers", containerYAML("  ephemeralContainers: [{name: debug, image: busybox}]\n"),
			"spec.ephemeralContainers", "Forbidden: static pods cannot have ephemeral containers"},

		{"pod-level resources other than CPU and memory", containerYAML("  resources: {limits: {ephemeral-storage: 1Gi}}\n"),
			"spec.resources.limits[ephemeral-storage]", `Unsupported value: "ephemeral-storage"`},
		{"pod-level request below the containers'", containerYAML("    resources: {requests: {cpu: 500m}}\n  resources: {requests: {cpu: 200m}}\n"),
			"spec.resources.requests[cpu]", `Invalid value: "200m": must be at least what the containers request together (500m)`},

		// containers
		{"container name not a DNS label", podYAML("  containers:\n  - name: App\n    image: nginx\n"),
			"spec.containers[0].name", `Invalid value: "App"`},
		{"container name required", podYAML("  containers:\n  - image: nginx\n"),
			"spec.containers[0].name", "Required value"},
		{"duplicate container name", podYAML(`
  containers:
  - name: app
    image: nginx
  - name: app
    image: nginx
`), "spec.containers[1].name", `Duplicate value: "app"`},
		{"container named as an init container", podYAML(`
  initContainers:
  - name: app
    image: busybox
  containers:
  - name: app
    image: nginx
`), "spec.containers[0].name", `Duplicate value: "app"`},
		{"image required", podYAML("  containers:\n  - name: app\n"), "spec.containers[0].image", "Required value"},
		{"imagePullPolicy", containerYAML("    imagePullPolicy: Sometimes\n"),
			"spec.containers[0].imagePullPolicy", `Unsupported value: "Sometimes"`},
		{"restartPolicy on a container", containerYAML("    restartPolicy: Always\n"),
			"spec.containers[0].restartPolicy", "Forbidden: only init containers"},
		{"init container restartPolicy", podYAML(`
  initContainers:
  - name: init
    image: busybox
    restartPolicy: OnFailure
  containers:
  - name: app
    image: nginx
`), "spec.initContainers[0].restartPolicy", `Unsupported value: "OnFailure"`},
		{"probe on a plain init container", podYAML(`
  initContainers:
  - name: init
    image: busybox
    readinessProbe: {exec: {command: ["true"]}}
  containers:
  - name: app
    image: nginx
`), "spec.initContainers[0].readinessProbe", "Forbidden: may not be set for init containers without restartPolicy Always"},

		// volumes
		{"volume name", containerYAML("  volumes:\n  - name: Data\n    emptyDir: {}\n"),
			"spec.volumes[0].name", `Invalid value: "Data"`},
		{"duplicate volume", containerYAML("  volumes:\n  - name: data\n    emptyDir: {}\n  - name: data\n    emptyDir: {}\n"),
			"spec.volumes[1].name", `Duplicate value: "data"`},
		{"two volume sources", containerYAML("  volumes:\n  - name: data\n    emptyDir: {}\n    hostPath: {path: /srv}\n"),
			"spec.volumes[0]", "Forbidden: may specify only one volume source, found hostPath and emptyDir"},
		{"secret volume", containerYAML("  volumes:\n  - name: creds\n    secret: {secretName: creds}\n"),
			"spec.volumes[0].secret", `Forbidden: static pods cannot reference API objects: volume "creds" cannot use a secret volume`},
		{"configMap volume", containerYAML("  volumes:\n  - name: conf\n    configMap: {name: conf}\n"),
			"spec.volumes[0].configMap", `static pods cannot reference API objects: volume "conf"`},
		{"persistentVolumeClaim volume", containerYAML("  volumes:\n  - name: db\n    persistentVolumeClaim: {claimName: db}\n"),
			"spec.volumes[0].persistentVolumeClaim", `static pods cannot reference API objects: volume "db"`},
		{"projected volume", containerYAML("  volumes:\n  - name: token\n    projected: {sources: [{serviceAccountToken: {path: token}}]}\n"),
			"spec.volumes[0].projected", `static pods cannot reference API objects: volume "token"`},
		{"unsupported volume source", containerYAML("  volumes:\n  - name: share\n    nfs: {server: nas, path: /export}\n"),
			"spec.volumes[0].nfs", `Forbidden: volume "share": nfs volumes are not supported by berth`},
		{"hostPath relative", containerYAML("  volumes:\n  - name: logs\n    hostPath: {path: var/log}\n"),
			"spec.volumes[0].hostPath.path", `Invalid value: "var/log": must be an absolute path`},
		{"hostPath with ..", containerYAML("  volumes:\n  - name: logs\n    hostPath: {path: /var/../etc}\n"),
			"spec.volumes[0].hostPath.path", "must not contain '..'"},
		{"hostPath type", containerYAML("  volumes:\n  - name: logs\n    hostPath: {path: /var/log, type: Dir}\n"),
			"spec.volumes[0].hostPath.type", `Unsupported value: "Dir"`},
		{"emptyDir medium", containerYAML("  volumes:\n  - name: cache\n    emptyDir: {medium: HugePages}\n"),
			"spec.volumes[0].emptyDir.medium", `Unsupported value: "HugePages"`},
		{"downwardAPI absolute path", downwardYAML("{path: /name, fieldRef: {fieldPath: metadata.name}}"),
			"spec.volumes[0].downwardAPI.items[0].path", `Invalid value: "/name": must be a relative path`},
		{"downwardAPI path with ..", downwardYAML("{path: ../name, fieldRef: {fieldPath: metadata.name}}"),
			"spec.volumes[0].downwardAPI.items[0].path", "must not contain '..'"},
		{"downwardAPI unsupported field", downwardYAML("{path: ip, fieldRef: {fieldPath: status.podIP}}"),
			"spec.volumes[0].downwardAPI.items[0].fieldRef.fieldPath", `Unsupported value: "status.podIP"`},
		{"downwardAPI without a source", downwardYAML("{path: name}"),
			"spec.volumes[0].downwardAPI.items[0]", "Required value: must specify a fieldRef or resourceFieldRef"},
		{"downwardAPI resource without container", downwardYAML("{path: mem, resourceFieldRef: {resource: limits.memory}}"),
			"spec.volumes[0].downwardAPI.items[0].resourceFieldRef.containerName", "Required value"},
		{"downwardAPI mode", downwardYAML("{path: name, mode: 4095, fieldRef: {fieldPath: metadata.name}}"),
			"spec.volumes[0].downwardAPI.items[0].mode", "Invalid value: 4095"},

		// volume mounts
		{"mount of an unknown volume", containerYAML(`
    volumeMounts:
    - {name: cache, mountPath: /cache}
    - {name: data, mountPath: /data}
  volumes:
  - name: cache
`), "spec.containers[0].volumeMounts[1].name", `Not found: "data"`},
		{"mountPath relative", mountYAML("{name: data, mountPath: data}"),
			"spec.containers[0].volumeMounts[0].mountPath", `Invalid value: "data": must be an absolute path`},
		{"mountPath twice", mountYAML("{name: data, mountPath: /data}\n    - {name: data, mountPath: /data/}"),
			"spec.containers[0].volumeMounts[1].mountPath", `Duplicate value: "/data/"`},
		{"subPath absolute", mountYAML("{name: data, mountPath: /data, subPath: /etc}"),
			"spec.containers[0].volumeMounts[0].subPath", `Invalid value: "/etc": must be a relative path`},
		{"subPath with ..", mountYAML("{name: data, mountPath: /data, subPath: a/../../etc}"),
			"spec.containers[0].volumeMounts[0].subPath", "must not contain '..'"},

		// env
		{"env name required", containerYAML("    env:\n    - value: x\n"),
			"spec.containers[0].env[0].name", "Required value"},
		{"env valueFrom without source", containerYAML("    env:\n    - name: X\n      valueFrom: {}\n"),
			"spec.containers[0].env[0].valueFrom", "Required value: must specify a source"},
		{"env valueFrom with two sources", envFromYAML("{fieldRef: {fieldPath: metadata.name}, resourceFieldRef: {resource: limits.cpu}}"),
			"spec.containers[0].env[0].valueFrom", "Forbidden: may specify only one source, found fieldRef and resourceFieldRef"},
		{"env secretKeyRef", envFromYAML("{secretKeyRef: {name: creds, key: password}}"),
			"spec.containers[0].env[0].valueFrom.secretKeyRef", "Forbidden: static pods cannot reference API objects"},
		{"env configMapKeyRef", envFromYAML("{configMapKeyRef: {name: conf, key: level}}"),
			"spec.containers[0].env[0].valueFrom.configMapKeyRef", "Forbidden: static pods cannot reference API objects"},
		{"env unsupported fieldPath", envFromYAML("{fieldRef: {fieldPath: spec.hostname}}"),
			"spec.containers[0].env[0].valueFrom.fieldRef.fieldPath", `Unsupported value: "spec.hostname"`},
		{"env whole labels", envFromYAML("{fieldRef: {fieldPath: metadata.labels}}"),
			"spec.containers[0].env[0].valueFrom.fieldRef.fieldPath", `Unsupported value: "metadata.labels"`},
		{"env bad label key", envFromYAML(`{fieldRef: {fieldPath: "metadata.labels['-x']"}}`),
			"spec.containers[0].env[0].valueFrom.fieldRef.fieldPath", `Invalid value: "metadata.labels['-x']"`},
		{"env fieldRef apiVersion", envFromYAML("{fieldRef: {apiVersion: v2, fieldPath: metadata.name}}"),
			"spec.containers[0].env[0].valueFrom.fieldRef.apiVersion", `Unsupported value: "v2"`},
		{"env unsupported resource", envFromYAML("{resourceFieldRef: {resource: limits.gpu}}"),
			"spec.containers[0].env[0].valueFrom.resourceFieldRef.resource", `Unsupported value: "limits.gpu"`},
		{"env resource of an unknown container", envFromYAML("{resourceFieldRef: {containerName: db, resource: limits.cpu}}"),
			"spec.containers[0].env[0].valueFrom.resourceFieldRef.containerName", `Not found: "db"`},
		{"env value and valueFrom", containerYAML("    env:\n    - name: X\n      value: x\n      valueFrom: {fieldRef: {fieldPath: metadata.name}}\n"),
			"spec.containers[0].env[0].valueFrom", "Forbidden: may not be set together with value"},
		{"envFrom", containerYAML("    envFrom: [{configMapRef: {name: conf}}]\n"),
			"spec.containers[0].envFrom", "Forbidden: static pods cannot reference API objects"},

		// resources
		{"unsupported resource", resourcesYAML("{limits: {nvidia.com/gpu: 1}}"),
			"spec.containers[0].resources.limits[nvidia.com/gpu]", `Unsupported value: "nvidia.com/gpu"`},
		{"bad hugepages size", resourcesYAML("{limits: {hugepages-big: 1Gi}}"),
			"spec.containers[0].resources.limits[hugepages-big]", `Unsupported value: "hugepages-big"`},
		{"request over limit", resourcesYAML("{limits: {memory: 1Gi}, requests: {memory: 2Gi}}"),
			"spec.containers[0].resources.requests[memory]", `Invalid value: "2Gi": must be less than or equal to the memory limit of 1Gi`},
		{"negative request", resourcesYAML("{requests: {cpu: -100m}}"),
			"spec.containers[0].resources.requests[cpu]", `Invalid value: "-100m": must be greater than or equal to 0`},
		{"absurd CPU", resourcesYAML("{requests: {cpu: 99999999999999999999}}"),
			"spec.containers[0].resources.requests[cpu]", `Invalid value: "100E": must be at most 1M`},
		{"absurd memory", resourcesYAML("{limits: {memory: 1Ei}}"),
			"spec.containers[0].resources.limits[memory]", `Invalid value: "1Ei": must be at most 1Pi`},
		{"resource claims", resourcesYAML("{claims: [{name: gpu}]}"),
			"spec.containers[0].resources.claims", "Forbidden: static pods cannot reference API objects"},

		// ports
		{"containerPort 0", portsYAML("{containerPort: 0}"),
			"spec.containers[0].ports[0].containerPort", "Invalid value: 0: must be between 1 and 65535"},
		{"containerPort too big", portsYAML("{containerPort: 65536}"),
			"spec.containers[0].ports[0].containerPort", "Invalid value: 65536: must be between 1 and 65535"},
		{"hostPort too big", portsYAML("{containerPort: 80, hostPort: 65536}"),
			"spec.containers[0].ports[0].hostPort", "Invalid value: 65536: must be between 1 and 65535"},
		{"hostPort negative", portsYAML("{containerPort: 80, hostPort: -1}"),
			"spec.containers[0].ports[0].hostPort", "Invalid value: -1"},
		{"protocol", portsYAML("{containerPort: 80, protocol: HTTP}"),
			"spec.containers[0].ports[0].protocol", `Unsupported value: "HTTP"`},
		{"port name", portsYAML("{containerPort: 80, name: web_http}"),
			"spec.containers[0].ports[0].name", `Invalid value: "web_http"`},
		{"hostPort used twice", podYAML(`
  containers:
  - name: app
    image: nginx
    ports: [{containerPort: 80, hostPort: 8080}]
  - name: metrics
    image: exporter
    ports: [{containerPort: 9100, hostPort: 8080, protocol: TCP}]
`), "spec.containers[1].ports[0].hostPort", `Duplicate value: "8080/TCP"`},
		{"hostPort used by a sidecar too", podYAML(`
  initContainers:
  - name: proxy
    image: envoy
    restartPolicy: Always
    ports: [{containerPort: 80, hostPort: 8080}]
  containers:
  - name: app
    image: nginx
    ports: [{containerPort: 80, hostPort: 8080}]
`), "spec.containers[0].ports[0].hostPort", `Duplicate value: "8080/TCP"`},
		{"hostNetwork hostPort differs", containerYAML("    ports: [{containerPort: 80, hostPort: 8080}]\n  hostNetwork: true\n"),
			"spec.containers[0].ports[0].hostPort", "must match containerPort when hostNetwork is true"},
		{"own users with the host's network", containerYAML("  hostUsers: false\n  hostNetwork: true\n"),
			"spec.hostNetwork", "Forbidden: when `hostUsers` is false, hostNetwork must be false"},
		{"own users with the host's PIDs", containerYAML("  hostUsers: false\n  hostPID: true\n"),
			"spec.hostPID", "Forbidden: when `hostUsers` is false, hostPID must be false"},

		// probes
		{"probe without handler", containerYAML("    livenessProbe: {periodSeconds: 5}\n"),
			"spec.containers[0].livenessProbe", "Required value: must specify a handler"},
		{"probe with two handlers", containerYAML("    readinessProbe: {exec: {command: [\"true\"]}, httpGet: {port: 80}}\n"),
			"spec.containers[0].readinessProbe", "Forbidden: may specify only one handler (exec, httpGet, tcpSocket or grpc), found exec and httpGet"},
		{"probe negative period", containerYAML("    readinessProbe: {tcpSocket: {port: 80}, periodSeconds: -5}\n"),
			"spec.containers[0].readinessProbe.periodSeconds", "Invalid value: -5: must be greater than or equal to 0"},
		{"probe negative initial delay", containerYAML("    startupProbe: {tcpSocket: {port: 80}, initialDelaySeconds: -1}\n"),
			"spec.containers[0].startupProbe.initialDelaySeconds", "Invalid value: -1"},
		{"liveness successThreshold", containerYAML("    livenessProbe: {tcpSocket: {port: 80}, successThreshold: 2}\n"),
			"spec.containers[0].livenessProbe.successThreshold", "Invalid value: 2: must be 1"},
		{"startup successThreshold", containerYAML("    startupProbe: {tcpSocket: {port: 80}, successThreshold: 3}\n"),
			"spec.containers[0].startupProbe.successThreshold", "Invalid value: 3: must be 1"},
		{"httpGet port missing", containerYAML("    livenessProbe: {httpGet: {path: /healthz}}\n"),
			"spec.containers[0].livenessProbe.httpGet.port", "Invalid value: 0: must be between 1 and 65535"},
		{"httpGet port unknown name", containerYAML("    livenessProbe: {httpGet: {port: admin}}\n    ports: [{name: http, containerPort: 80}]\n"),
			"spec.containers[0].livenessProbe.httpGet.port", `Invalid value: "admin": must be a port number or the name of one of the container's ports`},
		{"httpGet scheme", containerYAML("    livenessProbe: {httpGet: {port: 80, scheme: FTP}}\n"),
			"spec.containers[0].livenessProbe.httpGet.scheme", `Unsupported value: "FTP"`},
		{"tcpSocket port too big", containerYAML("    readinessProbe: {tcpSocket: {port: 70000}}\n"),
			"spec.containers[0].readinessProbe.tcpSocket.port", "Invalid value: 70000"},
		{"grpc port", containerYAML("    readinessProbe: {grpc: {port: 0}}\n"),
			"spec.containers[0].readinessProbe.grpc.port", "Invalid value: 0"},
		{"exec without command", containerYAML("    livenessProbe: {exec: {}}\n"),
			"spec.containers[0].livenessProbe.exec.command", "Required value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pods, err := Parse("pod.yaml", []byte(tt.manifest), testNode)
			if pods != nil {
				t.Errorf("Parse returned %d pods with an error", len(pods))
			}
			wantErrorLine(t, err, "pod.yaml: "+tt.field+": ", tt.detail)
		})
	}
}

func downwardYAML(item string) string {
	return containerYAML("  volumes:\n  - name: info\n    downwardAPI:\n      items:\n      - " + item + "\n")
}

func mountYAML(mounts string) string {
	return containerYAML("    volumeMounts:\n    - " + mounts + "\n  volumes:\n  - name: data\n    emptyDir: {}\n")
}

func envFromYAML(source string) string {
	return containerYAML("    env:\n    - name: X\n      valueFrom: " + source + "\n")
}

func resourcesYAML(resources string) string {
	return containerYAML("    resources: " + resources + "\n")
}

func portsYAML(ports string) string {
	return containerYAML("    ports: [" + ports + "]\n")
}

// TestValidateAccepts guards against refusing what is allowed: every
// supported feature in one pod.
func TestValidateAccepts(t *testing.T) {
	manifest := `apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: edge
  labels: {app: web, example.com/tier: front}
  annotations: {example.com/owner: ops}
spec:
  hostNetwork: false
  hostUsers: false
  dnsPolicy: None
  dnsConfig: {nameservers: [192.0.2.53]}
  restartPolicy: OnFailure
  serviceAccountName: web
  terminationGracePeriodSeconds: 0
  initContainers:
  - name: setup
    image: busybox:1.36
    command: [sh, -c, "echo ready > /work/ready"]
    volumeMounts: [{name: work, mountPath: /work}]
  - name: proxy
    image: envoyproxy/envoy:v1.31@sha256:0000000000000000000000000000000000000000000000000000000000000000
    restartPolicy: Always
    ports: [{name: proxy, containerPort: 8443, hostPort: 443}]
    readinessProbe: {tcpSocket: {port: proxy}}
  containers:
  - name: app
    image: registry.example.com:5000/web:2.1
    imagePullPolicy: Never
    ports:
    - {name: http, containerPort: 8080, hostPort: 80}
    - {name: dns, containerPort: 53, hostPort: 53, protocol: UDP}
    - {name: dns-tcp, containerPort: 53, hostPort: 53, protocol: TCP}
    env:
    - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
    - {name: TIER, valueFrom: {fieldRef: {fieldPath: "metadata.labels['example.com/tier']"}}}
    - {name: HOST_IP, valueFrom: {fieldRef: {fieldPath: status.hostIP}}}
    - {name: MEM, valueFrom: {resourceFieldRef: {resource: limits.memory, divisor: 1Mi}}}
    - {name: PLAIN, value: "x"}
    resources:
      limits: {cpu: 500m, memory: 256Mi, hugepages-2Mi: 64Mi, ephemeral-storage: 1Gi}
      requests: {cpu: 100m}
    volumeMounts:
    - {name: work, mountPath: /work, readOnly: true}
    - {name: logs, mountPath: /var/log/web, subPath: web}
    - {name: info, mountPath: /etc/podinfo}
    - {name: scratch, mountPath: /tmp}
    livenessProbe: {httpGet: {port: http, path: /healthz}, periodSeconds: 5}
    readinessProbe: {exec: {command: ["true"]}, successThreshold: 2}
    startupProbe: {grpc: {port: 9090}, failureThreshold: 30}
  volumes:
  - name: work
    emptyDir: {medium: Memory, sizeLimit: 16Mi}
  - name: logs
    hostPath: {path: /var/log, type: DirectoryOrCreate}
  - name: info
    downwardAPI:
      items:
      - {path: labels, fieldRef: {fieldPath: metadata.labels}}
      - {path: sub/name, fieldRef: {fieldPath: metadata.name}}
      - {path: cpu, resourceFieldRef: {containerName: app, resource: requests.cpu, divisor: 1m}}
  - name: scratch
`
	parseOne(t, manifest)
}
