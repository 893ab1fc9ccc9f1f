import subprocess
import sys


def test_import_knockoff_stays_light():
    code = (
        "import sys, knockoff; knockoff.list_embedders(); "
        "heavy = [m for m in ('torch', 'open_clip', 'faiss', 'cv2', 'torchvision') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_public_api_is_exported():
    import knockoff

    for name in knockoff.__all__:
        assert hasattr(knockoff, name), name
