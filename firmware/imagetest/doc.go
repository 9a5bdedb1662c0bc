// Package imagetest checks the Raspberry Pi SD image that `make image` builds (firmware/image):
// TestImage reads its partition table, its boot files and its root file system without mounting
// or booting anything; TestBoot boots its root file system in QEMU with its own kernel. Both run
// only when RELAIS_IMAGE names an image (make image and make image-test set it), TestBoot only
// with RELAIS_IMAGE_BOOT=1 as well: building and booting an image take minutes, far more than
// `make test` allows.
package imagetest
