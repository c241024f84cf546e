{
  'variables': {
    'vips_include': '<!(node scripts/libvips-paths.cjs includeDir)',
    'vips_lib': '<!(node scripts/libvips-paths.cjs libDir)',
    'vips_version': '<!(node scripts/libvips-paths.cjs vipsVersion)',
    'vips_rpath': '<!(node scripts/libvips-paths.cjs rpath)'
  },
  'targets': [{
    'target_name': 'iaas',
    'sources': [
      'native/addon.cc',
      'native/errors.cc',
      'native/js_errors.cc',
      'native/sniff.cc',
      'native/quality.cc',
      'native/load.cc',
      'native/deadline.cc',
      'native/geometry.cc',
      'native/gravity.cc',
      'native/animation.cc',
      'native/summary.cc',
      'native/pipeline.cc',
      'native/save.cc',
      'native/strip.cc',
      'native/options.cc',
      'native/testing.cc'
    ],
    'include_dirs': [
      '<!(node -p "require(\'node-addon-api\').include_dir")',
      '<(vips_include)',
      '<(vips_include)/glib-2.0',
      '<(vips_lib)/glib-2.0/include'
    ],
    'defines': [
      'NAPI_VERSION=9',
      'NODE_ADDON_API_DISABLE_DEPRECATED',
      'NAPI_CPP_EXCEPTIONS',
      'NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS',
      'G_DISABLE_ASSERT',
      'G_DISABLE_CAST_CHECKS',
      '_GLIBCXX_USE_CXX11_ABI=1'
    ],
    'cflags!': ['-fno-exceptions'],
    'cflags_cc!': ['-fno-exceptions', '-fno-rtti'],
    'cflags_cc': ['-std=c++17', '-fexceptions', '-Wall', '-Wextra', '-Wno-unused-parameter', '-O2'],
    'library_dirs': ['<(vips_lib)'],
    'link_settings': {
      'libraries': ['-l:libvips-cpp.so.<(vips_version)'],
      'ldflags': [
        '-Wl,-z,nodelete',
        '-Wl,--disable-new-dtags',
        '-Wl,-rpath=\'$$ORIGIN/<(vips_rpath)\''
      ]
    }
  }]
}
