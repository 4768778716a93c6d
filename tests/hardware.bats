#!/usr/bin/env bats
# Hardware detection and what the plan makes of it: variants chosen from a
# fake machine (a sysfs/procfs tree under ONRAMP_HW_ROOT, with nvidia-smi and
# rocminfo shims in its usr/bin), --gpu overrides, profiles, and the choice
# surviving kill -9 + resume when the machine changes in between.

load lib/common

setup() {
    common_setup
    W=$T/m
    mkdir -p "$W/artifacts"
    for f in chat-big chat-mid chat-cpu embed npu-model; do
        printf '%s\n' "$f" >"$W/artifacts/$f.bin"
        head -c 3000 /dev/urandom >>"$W/artifacts/$f.bin"
    done
    art() {
        jq -n --arg p "artifacts/$1.bin" --arg s "$(sha256sum <"$W/artifacts/$1.bin" | cut -c1-64)" \
            --argjson n "$(stat -c %s "$W/artifacts/$1.bin")" '{any: {path: $p, sha256: $s, size: $n}}'
    }
    jq -n --argjson big "$(art chat-big)" --argjson mid "$(art chat-mid)" --argjson cpu "$(art chat-cpu)" \
        --argjson embed "$(art embed)" --argjson npu "$(art npu-model)" --arg t "$T" '{
      schema: 1, name: "hw-test", version: "1.0.0",
      default_profile: "full",
      profiles: {
        full: {components: ["model-chat", "model-npu", "rag"]},
        chat: {components: ["model-chat"], description: "chat only"},
        rag: {components: ["rag"]}
      },
      components: [
        {id: "model-chat", kind: "model", install_path: "models/chat.bin", variants: [
          {id: "big", description: "cuda tier", requires: {gpu: ["cuda", "rocm", "metal"], min_vram_gb: 12}, artifacts: $big},
          {id: "mid", requires: {gpu: ["cuda", "rocm"], min_vram_gb: 6, min_driver: "535"}, artifacts: $mid},
          {id: "cpu", artifacts: $cpu}]},
        {id: "model-npu", kind: "model", optional: true, install_path: "models/npu.bin", variants: [
          {id: "xdna", requires: {npu: true}, artifacts: $npu}]},
        {id: "model-embed", kind: "model", install_path: "models/embed.bin", artifacts: $embed},
        {id: "rag", kind: "extra", depends_on: ["model-embed"],
         command: ["sh", "-c", "[ -e \($t)/kill-helper ] && rm \($t)/kill-helper && kill -9 $PPID; echo \"$ONRAMP_GPU ${ONRAMP_PROFILE:-}\" > rag.txt"]}
      ]}' >"$W/manifest.json"
    HW=$T/hw
    mkdir -p "$HW/usr/bin" "$HW/proc"
    printf 'MemTotal:       16318480 kB\n' >"$HW/proc/meminfo"
    export ONRAMP_HW_ROOT=$HW
}
teardown() { common_teardown; }

# nvidia_smi NAME MIB DRIVER: an nvidia-smi that answers like that card.
nvidia_smi() {
    printf '#!/bin/sh\necho "%s, %s, %s"\n' "$1" "$2" "$3" >"$HW/usr/bin/nvidia-smi"
    chmod 755 "$HW/usr/bin/nvidia-smi"
}

# amd_card MIB: an AMD GPU in sysfs with ROCm's /dev/kfd.
amd_card() {
    mkdir -p "$HW/sys/class/drm/card0/device" "$HW/sys/class/drm/card0-DP-1" "$HW/dev"
    echo 0x1002 >"$HW/sys/class/drm/card0/device/vendor"
    echo $(($1 * 1024 * 1024)) >"$HW/sys/class/drm/card0/device/mem_info_vram_total"
    : >"$HW/dev/kfd"
    printf '#!/bin/sh\nprintf "  Marketing Name:          AMD Ryzen 9 CPU\\n  Marketing Name:          AMD Radeon RX 7900 XTX\\nRuntime Version:         1.14\\n"\n' \
        >"$HW/usr/bin/rocminfo"
    chmod 755 "$HW/usr/bin/rocminfo"
}

plan_of() {
    run "$H" plan --manifest "$W/manifest.json" --prefix "$PREFIX" "$@"
}

installed_chat() {
    head -n 1 "$PREFIX/models/chat.bin"
}

@test "each machine gets the variant that fits it, and the plan says why" {
    plan_of
    assert_success
    assert_output --partial "machine: gpu cpu; 15.6 GB RAM"
    assert_output --partial "profile: full"
    assert_output --partial "choice: model-chat: cpu (no requirements; passed over big: needs cuda or rocm or metal, found cpu; mid: needs cuda or rocm, found cpu)"
    assert_output --partial "choice: model-npu: no variant fits this machine (xdna: needs an NPU, found none)"
    assert_output --partial "model-npu (optional): no variant fits this machine, skipped"

    nvidia_smi "NVIDIA GeForce RTX 4060" 8188 550.54.15
    plan_of
    assert_output --partial "machine: gpu cuda: NVIDIA GeForce RTX 4060, 8 GB VRAM, driver 550.54.15"
    assert_output --partial "model-chat: mid (needs cuda or rocm, found cuda; needs 6 GB VRAM, found 8; needs driver 535, found 550.54.15; passed over big: needs 12 GB VRAM, found 8)"

    nvidia_smi "NVIDIA GeForce RTX 4090" 24564 550.54.15
    plan_of
    assert_output --partial "model-chat: big (needs cuda or rocm or metal, found cuda; needs 12 GB VRAM, found 24)"

    # An old driver: the mid tier is refused by min_driver.
    nvidia_smi "NVIDIA GeForce RTX 3060" 8192 525.60
    plan_of
    assert_output --partial "model-chat: cpu (no requirements; passed over big: needs 12 GB VRAM, found 8; mid: needs driver 535, found 525.60)"

    # No nvidia-smi: the kernel module's files and libcuda say CUDA, the VRAM is unknown.
    rm "$HW/usr/bin/nvidia-smi"
    mkdir -p "$HW/proc/driver/nvidia/gpus/0000:01:00.0" "$HW/usr/lib/x86_64-linux-gnu"
    echo "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15  Tue Mar  5 22:23:56 UTC 2024" >"$HW/proc/driver/nvidia/version"
    printf 'Model: \t\t NVIDIA L4\nIRQ:   142\n' >"$HW/proc/driver/nvidia/gpus/0000:01:00.0/information"
    : >"$HW/usr/lib/x86_64-linux-gnu/libcuda.so.1"
    plan_of
    assert_output --partial "machine: gpu cuda: NVIDIA L4, driver 550.54.15"
    assert_output --partial "model-chat: cpu (no requirements; passed over big: needs 12 GB VRAM, found an unknown amount"
    rm -r "$HW/proc/driver" "$HW/usr/lib"

    # Intel: an Arc card in sysfs is the intel backend; no variant here asks for it.
    mkdir -p "$HW/sys/class/drm/card1/device"
    echo 0x8086 >"$HW/sys/class/drm/card1/device/vendor"
    echo "Intel Arc A770" >"$HW/sys/class/drm/card1/device/product_name"
    plan_of
    assert_output --partial "machine: gpu intel: Intel Arc A770"
    assert_output --partial "model-chat: cpu (no requirements; passed over big: needs cuda or rocm or metal, found intel"

    # With an AMD card beside it, the AMD card (a ROCm backend, more VRAM) wins.
    amd_card 16384
    plan_of
    assert_output --partial "machine: gpu rocm: AMD Radeon RX 7900 XTX, 16 GB VRAM, driver 1.14"
    assert_output --partial "model-chat: big (needs cuda or rocm or metal, found rocm; needs 12 GB VRAM, found 16)"

    # An NPU (AMD XDNA): the optional NPU model now has a variant.
    mkdir -p "$HW/sys/class/accel/accel0/device"
    echo 0x1022 >"$HW/sys/class/accel/accel0/device/vendor"
    plan_of
    assert_output --partial "npu amd-xdna"
    assert_output --partial "model-npu: xdna (needs an NPU, found amd-xdna)"
    echo 0x8086 >"$HW/sys/class/accel/accel0/device/vendor"
    plan_of
    assert_output --partial "model-npu: xdna (needs an NPU, found intel-npu)"
}

@test "--gpu overrides detection; a bad value and an unknown profile are usage errors naming the choices" {
    nvidia_smi "NVIDIA GeForce RTX 4090" 24564 550.54.15
    plan_of --gpu cpu
    assert_success
    assert_output --partial "gpu cpu (forced by --gpu)"
    assert_output --partial "model-chat: cpu"
    plan_of --gpu vulkan
    assert_equal "$status" 2
    assert_output --partial '--gpu "vulkan": use one of cuda, rocm, metal, intel, cpu'
    plan_of --profile nope
    assert_equal "$status" 2
    assert_output --partial "--profile nope: no such profile; this manifest has chat, full, rag"
    ONRAMP_GPU=vulkan run onramp_install --manifest "$W/manifest.json" --prefix "$PREFIX" --dry-run
    assert_equal "$status" 2
}

@test "an install on a 24 GB NVIDIA box installs the big tier; a profile installs exactly its components" {
    nvidia_smi "NVIDIA GeForce RTX 4090" 24564 550.54.15
    run onramp_install --manifest "$W/manifest.json" --prefix "$PREFIX" --events "$T/ev.ndjson"
    assert_success
    [ "$(installed_chat)" = chat-big ]
    # the events name the chosen variant, and every component is running before it is done
    jq -s -e 'map(select(.type == "started"))[0].components | map(select(.id == "model-chat"))[0]
        | .variant == "big" and .variant_description == "cuda tier" and (.variant_why | test("cuda"))' "$T/ev.ndjson"
    jq -s -e '[.[] | select(.type == "step")] as $s | ($s | map(select(.status == "done") | .component)) as $done
        | ($done | length) == 3 and all($done[]; . as $c | ($s | map(.component == $c and .status == "running") | index(true))
            < ($s | map(.component == $c and .status == "done") | index(true)))' "$T/ev.ndjson"
    jq -s -e 'map(select(.type == "step" and .component == "rag" and .status == "running") | .message) | any(.[]; startswith("running sh -c"))' "$T/ev.ndjson"
    [ "$(head -n 1 "$PREFIX/models/embed.bin")" = embed ]
    [ ! -e "$PREFIX/models/npu.bin" ]
    [ "$(cat "$PREFIX/rag.txt")" = "cuda full" ]
    jq -e '.decided.hardware.gpu == "cuda" and .decided.hardware.vram_mb == 24564
        and .decided.variants["model-chat"] == "big" and .decided.profile == "full"' "$(state_file)"

    P2=$T/prefix2
    run onramp_install --manifest "$W/manifest.json" --prefix "$P2" --profile chat
    assert_success
    assert_output --partial "not in this profile: model-npu, model-embed, rag"
    (cd "$P2" && find . -type f ! -name capabilities.json | sort) >"$T/files"
    [ "$(cat "$T/files")" = "./models/chat.bin" ]
    jq -e '[.steps[].id] == ["model-chat"]' "$(state_file "$P2")"

    # The rag profile pulls in what rag depends on, and nothing else.
    P3=$T/prefix3
    ONRAMP_PROFILE=rag run onramp_install --manifest "$W/manifest.json" --prefix "$P3"
    assert_success
    jq -e '[.steps[].id] | sort == ["model-embed", "rag"]' "$(state_file "$P3")"
    [ "$(cat "$P3/rag.txt")" = "cuda rag" ]
    [ ! -e "$P3/models/chat.bin" ]
}

@test "kill -9 of the helper, a new GPU, then resume: the first run's choice stands; a finished install re-plans for the new GPU" {
    nvidia_smi "NVIDIA GeForce RTX 4090" 24564 550.54.15
    : >"$T/kill-helper"
    run onramp_install --manifest "$W/manifest.json" --prefix "$PREFIX"
    # The OOM killer's way: exit 14, named, with what to do; the state is resumable.
    assert_equal "$status" 14
    assert_output --partial "the helper was killed by signal 9 (SIGKILL: kill -9, or the kernel ran out of memory; see dmesg)"
    assert_output --partial "run the installer again to resume"
    [ "$(installed_chat)" = chat-big ]
    jq -e '.status == "interrupted" and .exit_code == 14' "$(state_file)"
    # The machine now reports a small card: a resume must not switch tiers.
    nvidia_smi "NVIDIA GeForce RTX 4060" 8188 550.54.15
    before=$(stat -c '%i %Y' "$PREFIX/models/chat.bin")
    run onramp_install --manifest "$W/manifest.json" --prefix "$PREFIX" -y
    assert_success
    assert_output --partial "Resume from phase 7 (extras)? [Y/n] yes"
    [ "$(installed_chat)" = chat-big ]
    [ "$(stat -c '%i %Y' "$PREFIX/models/chat.bin")" = "$before" ]
    jq -e '.decided.variants["model-chat"] == "big" and .decided.hardware.vram_mb == 24564' "$(state_file)"

    # Finished: the next run sees the new card, a changed plan, and moves to the mid tier.
    run onramp_install --manifest "$W/manifest.json" --prefix "$PREFIX" -y
    assert_success
    assert_output --partial "upgrade model-chat"
    [ "$(installed_chat)" = chat-mid ]
    jq -e '.decided.variants["model-chat"] == "mid"' "$(state_file)"
    [ "$(cat "$PREFIX/rag.txt")" = "cuda full" ]
}

@test "a required component no variant fits stops the install before anything is fetched (exit 5), naming --gpu" {
    jq '.components[0].variants |= map(select(.id != "cpu"))' "$W/manifest.json" >"$W/gpu-only.json"
    run onramp_install --manifest "$W/gpu-only.json" --prefix "$PREFIX"
    assert_equal "$status" 5
    assert_output --partial "model-chat: no variant fits this machine (big: needs cuda or rocm or metal, found cpu; mid: needs cuda or rocm, found cpu); use --gpu"
    [ ! -e "$PREFIX/models" ]
}

@test "the manifest's variants and profiles are validated with their JSON path; the JSON Schema agrees" {
    schema_ok() { schema_valid "$1" 2>/dev/null; }
    schema_ok "$W/manifest.json"
    jq '.components[0].variants[1].requires.gpu = ["vulkan"]' "$W/manifest.json" >"$W/bad1.json"
    run "$H" plan --manifest "$W/bad1.json" --prefix "$PREFIX"
    assert_equal "$status" 3
    assert_output --partial 'components[0].variants[1].requires.gpu[0]'
    ! schema_ok "$W/bad1.json"
    jq '.profiles.chat.components = ["model-chatt"]' "$W/manifest.json" >"$W/bad2.json"
    run "$H" plan --manifest "$W/bad2.json" --prefix "$PREFIX"
    assert_equal "$status" 3
    assert_output --partial 'profiles.chat.components[0]: no component has id "model-chatt"'
    jq '.default_profile = "everything"' "$W/manifest.json" >"$W/bad3.json"
    run "$H" plan --manifest "$W/bad3.json" --prefix "$PREFIX"
    assert_equal "$status" 3
    assert_output --partial 'default_profile: no profile is named "everything"'
    jq '.components[0].artifacts = .components[2].artifacts' "$W/manifest.json" >"$W/bad4.json"
    run "$H" plan --manifest "$W/bad4.json" --prefix "$PREFIX"
    assert_equal "$status" 3
    assert_output --partial 'components[0].artifacts: a component with "variants" gives its artifacts in each variant'
    jq 'del(.components[0].variants[2].artifacts)' "$W/manifest.json" >"$W/bad5.json"
    run "$H" plan --manifest "$W/bad5.json" --prefix "$PREFIX"
    assert_equal "$status" 3
    assert_output --partial 'components[0].variants[2].artifacts'
    jq '.profiles.chat.extra = 1' "$W/manifest.json" >"$W/bad6.json"
    ! schema_ok "$W/bad6.json"
}

@test "a one-line manifest (jq -c) installs: install.sh asks the helper for default_prefix" {
    jq -c '.default_prefix = "~/hw-stack"' "$W/manifest.json" >"$W/one.json"
    [ "$(wc -l <"$W/one.json")" = 1 ]
    run onramp_install --manifest "$W/one.json" --profile chat
    assert_success
    [ "$(installed_chat_at "$HOME/hw-stack")" = chat-cpu ]
}

installed_chat_at() {
    head -n 1 "$1/models/chat.bin"
}
