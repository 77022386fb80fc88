{
  "targets": [
    {
      "target_name": "awty_native",
      "sources": ["src/tensor.cc", "src/ops.cc", "src/nn.cc", "src/allocator.cc", "src/dist.cc", "src/amp.cc"],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "<!@(node find-libtorch.cjs include)"
      ],
      "libraries": [
        "-L<!(node find-libtorch.cjs libdir)",
        "-Wl,-rpath,<!(node find-libtorch.cjs libdir)",
        "<!@(node find-libtorch.cjs libs)"
      ],
      "defines": ["NAPI_CPP_EXCEPTIONS", "NAPI_VERSION=8", "USE_C10D_GLOO", "AWTY_CUDA=<!(node find-libtorch.cjs cuda)"],
      "cflags!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17", "-std=gnu++20"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-frtti", "-O2", "-Wno-unused-parameter", "-Wno-deprecated-declarations"]
    },
    {
      "target_name": "awty_image",
      "sources": ["src/image.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_CPP_EXCEPTIONS", "NAPI_VERSION=8"],
      "cflags!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17", "-std=gnu++20"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-O3", "-ffp-contract=off", "-Wno-unused-parameter"]
    },
    {
      "target_name": "awty_jpeg",
      "conditions": [
        ["<!(node find-jpeg.cjs)==1", {
          "sources": ["src/jpeg.cc"],
          "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
          "libraries": ["-ljpeg"],
          "defines": ["NAPI_CPP_EXCEPTIONS", "NAPI_VERSION=8"],
          "cflags!": ["-fno-exceptions", "-fno-rtti"],
          "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17", "-std=gnu++20"],
          "cflags_cc": ["-std=c++17", "-fexceptions", "-O2", "-Wno-unused-parameter", "-Wno-clobbered"]
        }, {
          "type": "none"
        }]
      ]
    }
  ]
}
