# A headstart extraction worker (docs/scale-out.md), built from the npm package.
#
# NOT BUILT OR TESTED: it was written on a machine without a container runtime or base images.
#
#   npm pack        # in a clone: headstart-0.1.0.tgz next to this file
#   docker build -t headstart-worker:0.1.0 .
#
# The CUDA runtime image carries CUDA 12 and cuDNN 9, which ONNX Runtime's CUDA 12 provider
# needs; the NVIDIA driver comes from the host (NVIDIA Container Toolkit / the GPU device plugin).
# On a machine without a GPU the same image runs on the CPU (--device cpu, or auto).
FROM nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04

ARG NODE_MAJOR=20
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl gnupg \
 && curl -fsSL https://deb.nodesource.com/setup_${NODE_MAJOR}.x | bash - \
 && apt-get install -y --no-install-recommends nodejs \
 && rm -rf /var/lib/apt/lists/*

# The package, without onnxruntime-node's download at install time (as the project's .npmrc does),
# then ONNX Runtime's CUDA 12 provider fetched explicitly (what `npm run setup:cuda` does in a clone).
COPY headstart-*.tgz /tmp/
RUN npm_config_onnxruntime_node_install=skip npm install -g /tmp/headstart-*.tgz \
 && cd "$(npm root -g)/headstart/node_modules/onnxruntime-node" \
 && ONNXRUNTIME_NODE_INSTALL_CUDA=v12 node script/install.js \
 && rm /tmp/headstart-*.tgz \
 && npm cache clean --force

# Weights, data and shard files come from a mounted volume (see docs/scale-out.md); ONNX models
# that headstart builds from the weights are written under the working folder's models/.
WORKDIR /data
USER 1000:1000
ENTRYPOINT ["headstart"]
CMD ["--help"]
