"""Version rules (spec section 3): same major reads, newer minor warns, newer major fails naming
both versions, garbage fails, older majors are read through registered legacy readers."""
import shutil
import warnings

import h5py
import pytest

import neural_format as nf
from neural_format.files import elements
from neural_format.collections.synthetic import synthetic_meta, synthetic_records
from neural_format.version import FORMAT_VERSION


@pytest.fixture(scope="module")
def valid_file(tmp_path_factory):
    meta = synthetic_meta(feature_dim=4)
    return nf.write_collection(tmp_path_factory.mktemp("v") / "c.h5", meta, synthetic_records(4, meta), fsync=False)


def with_version(source, tmp_path, version):
    path = tmp_path / f"v{version}.h5"
    shutil.copy(source, path)
    with h5py.File(path, "r+") as f:
        f.attrs["format_version"] = version
    return path


def test_same_major_reads_silently(valid_file):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with nf.open(valid_file) as reader:
            assert str(reader.version) == FORMAT_VERSION and len(reader) == 4


def test_newer_minor_reads_with_warning(valid_file, tmp_path):
    path = with_version(valid_file, tmp_path, "1.7.2")
    with pytest.warns(nf.FormatVersionWarning, match="1.7.2"):
        with nf.open(path) as reader:
            assert len(reader.read_all()) == 4
    report = nf.validate(path)
    assert "NF-V002" in report.codes and report.ok and report.exit_code == 1


def test_newer_major_fails_naming_both_versions(valid_file, tmp_path):
    path = with_version(valid_file, tmp_path, "2.1.0")
    with pytest.raises(nf.FormatVersionError) as err:
        nf.open(path)
    assert err.value.code == "NF-V003"
    assert "2.1.0" in str(err.value) and FORMAT_VERSION in str(err.value)
    report = nf.validate(path)
    assert report.codes == {"NF-V003"} and report.exit_code == 2


@pytest.mark.parametrize("garbage", ["1.0", "v1.0.0", "1.0.0-beta", "01.0.0", "", "1.0.0.0", "x" * 200])
def test_garbage_version_string(valid_file, tmp_path, garbage):
    path = with_version(valid_file, tmp_path, garbage)
    with pytest.raises(nf.FormatVersionError) as err:
        nf.open(path)
    assert err.value.code == "NF-V001"
    assert "NF-V001" in nf.validate(path).codes


def test_older_major_without_reader_fails(valid_file, tmp_path):
    path = with_version(valid_file, tmp_path, "0.4.0")
    with pytest.raises(nf.FormatVersionError) as err:
        nf.open(path)
    assert err.value.code == "NF-V004" and "0.4.0" in str(err.value)
    assert nf.validate(path).codes == {"NF-V004"}


def test_registered_legacy_reader_is_used_for_an_older_major(valid_file, tmp_path):
    path = with_version(valid_file, tmp_path, "0.9.0")
    opened = []

    class LegacyReader:
        """A read-only reader for the fake format 0.x."""
        def __init__(self, source, **kwargs):
            opened.append(source)
            with h5py.File(source, "r") as f:
                self.version = f.attrs["format_version"]

    elements.register_reader("neural-collection", 0)(LegacyReader)
    try:
        reader = nf.open(path)
        assert isinstance(reader, LegacyReader) and reader.version == "0.9.0" and opened == [path]
        report = nf.validate(path)
        assert report.ok and "NF-V004" not in report.codes
        assert any("legacy reader" in reason for reason in report.skipped)
    finally:
        elements._READERS.pop(("neural-collection", 0), None)
    with pytest.raises(nf.FormatVersionError):
        nf.open(path)
    assert ("neural-collection", 1) in elements.registered()


@pytest.mark.parametrize("encoding_version", ["2.0.0", "0.9.0", "1", "1.x.0", ""])
def test_root_encoding_version_major_is_checked(valid_file, tmp_path, encoding_version):
    """NF-E001: the root's encoding-version must be MAJOR.MINOR.PATCH with this reader's major."""
    path = tmp_path / "enc.h5"
    shutil.copy(valid_file, path)
    with h5py.File(path, "r+") as f:
        f.attrs["encoding-version"] = encoding_version
    with pytest.raises(nf.SchemaError) as err:
        nf.open(path)
    assert err.value.code == "NF-E001" and "encoding-version" in err.value.location
    report = nf.validate(path)
    assert "NF-E001" in report.codes and report.exit_code == 2


def test_root_encoding_newer_minor_is_read(valid_file, tmp_path):
    """Only the major of an element encoding is compared: 1.3.0 reads and validates."""
    path = tmp_path / "enc.h5"
    shutil.copy(valid_file, path)
    with h5py.File(path, "r+") as f:
        f.attrs["encoding-version"] = "1.3.0"
        f["/patches"].attrs["encoding-version"] = "1.2.7"
    with nf.open(path) as reader:
        assert len(reader) == 4
    assert "NF-E001" not in nf.validate(path).codes


def test_group_encoding_version_major_is_checked(valid_file, tmp_path):
    path = tmp_path / "enc.h5"
    shutil.copy(valid_file, path)
    with h5py.File(path, "r+") as f:
        f["/records/id"].attrs["encoding-version"] = "2.0.0"
    report = nf.validate(path)
    assert "NF-E001" in report.codes and "/records/id" in report.to_text()


def test_newer_minor_finding_survives_validations_in_other_threads():
    """NF-V002 is computed, not caught as a warning: warnings.catch_warnings swaps process-wide
    state, and a validation in another thread (the conformance runner's --jobs) used to lose it."""
    from concurrent.futures import ThreadPoolExecutor
    from pathlib import Path
    import neural_format as nf
    corpus = Path(__file__).resolve().parents[1] / "spec" / "conformance"
    newer, other = corpus / "NF-V002.invalid.h5", corpus / "NF-V002.valid.h5"
    with ThreadPoolExecutor(max_workers=4) as pool:
        reports = list(pool.map(nf.validate, [newer, other] * 12))
    codes = [{f.code for f in report.findings} for report in reports]
    assert all("NF-V002" in found for found in codes[0::2]), codes[0::2]
    assert not any("NF-V002" in found for found in codes[1::2])
