// Validates every manifest on stdin (a `helm template` output) against the
// Kubernetes OpenAPI schemas bundled in kubernetes-models (ajv), and the
// Prometheus Operator's CRD schemas for ServiceMonitor and PrometheusRule. Prints one line per
// object; exits 1 when an object is invalid or of an unknown kind.
import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";

const kinds = {
  "v1/ConfigMap": "kubernetes-models/v1/ConfigMap",
  "v1/Service": "kubernetes-models/v1/Service",
  "v1/ServiceAccount": "kubernetes-models/v1/ServiceAccount",
  "v1/PersistentVolumeClaim": "kubernetes-models/v1/PersistentVolumeClaim",
  "apps/v1/Deployment": "kubernetes-models/apps/v1/Deployment",
  "policy/v1/PodDisruptionBudget": "kubernetes-models/policy/v1/PodDisruptionBudget",
  "autoscaling/v2/HorizontalPodAutoscaler": "kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler",
  "monitoring.coreos.com/v1/ServiceMonitor": "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor",
  "monitoring.coreos.com/v1/PrometheusRule": "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule",
};

const text = readFileSync(0, "utf8");
let failed = 0;
let count = 0;
for (const doc of parseAllDocuments(text)) {
  if (doc.errors.length) {
    console.log(`INVALID YAML: ${doc.errors[0].message}`);
    failed++;
    continue;
  }
  const obj = doc.toJS();
  if (!obj) continue;
  count++;
  const key = `${obj.apiVersion}/${obj.kind}`;
  const where = `${key} ${obj.metadata?.name}`;
  const mod = kinds[key];
  if (!mod) {
    console.log(`UNKNOWN KIND ${where}`);
    failed++;
    continue;
  }
  const cls = Object.values(await import(mod)).find((v) => typeof v === "function");
  try {
    new cls(obj).validate();
    console.log(`ok ${where}`);
  } catch (e) {
    console.log(`INVALID ${where}: ${e.message.split("\n").slice(0, 6).join(" | ")}`);
    failed++;
  }
}
if (count === 0) {
  console.log("no manifests on stdin");
  failed++;
}
process.exit(failed ? 1 : 0);
