"""diffir_mm.cli.restore.discovery: files, folders, globs and masks."""
import os

from diffir_mm.cli.restore.discovery import collect_inputs, find_mask, mask_files


def _touch(path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'wb'):
        pass
    return str(path)


def test_folders_give_their_images_sorted_and_not_recursively(tmp_path):
    for name in ('b.png', 'a.JPG', 'notes.txt', 'sub/c.png'):
        _touch(tmp_path / 'photos' / name)
    files, errors = collect_inputs([str(tmp_path / 'photos')])
    assert [os.path.basename(f) for f in files] == ['a.JPG', 'b.png']
    assert errors == []


def test_a_named_file_is_taken_whatever_its_extension(tmp_path):
    path = _touch(tmp_path / 'scan.raw')
    assert collect_inputs([path]) == ([path], [])


def test_globs_match_images_and_recurse_with_two_stars(tmp_path):
    for name in ('a.png', 'a.txt', 'deep/b.png'):
        _touch(tmp_path / name)
    files, _ = collect_inputs([str(tmp_path / '*')])
    assert files == [str(tmp_path / 'a.png')]
    files, _ = collect_inputs([str(tmp_path / '**' / '*.png')])
    assert sorted(files) == [str(tmp_path / 'a.png'), str(tmp_path / 'deep' / 'b.png')]


def test_each_file_once_however_it_is_named(tmp_path):
    path = _touch(tmp_path / 'in' / 'a.png')
    os.symlink(path, tmp_path / 'link.png')
    files, errors = collect_inputs([path, str(tmp_path / 'in'), str(tmp_path / 'in' / '*.png'),
                                    str(tmp_path / 'link.png')])
    assert files == [path] and errors == []


def test_problems_are_one_line_each_and_the_rest_is_kept(tmp_path):
    good = _touch(tmp_path / 'a.png')
    (tmp_path / 'empty').mkdir()
    files, errors = collect_inputs([str(tmp_path / 'empty'), str(tmp_path / 'missing.png'),
                                    str(tmp_path / 'none' / '*.png'), good])
    assert files == [good]
    assert errors == [f'{tmp_path / "empty"}: folder contains no images',
                      f'{tmp_path / "missing.png"}: no such file or directory',
                      f'{tmp_path / "none" / "*.png"}: no images match this pattern']


def test_find_mask_by_stem_lower_case_extensions_first(tmp_path):
    masks = tmp_path / 'masks'
    _touch(masks / 'a.PNG')
    assert find_mask('photos/a.jpg', str(masks)) == str(masks / 'a.PNG')
    _touch(masks / 'a.png')
    assert find_mask('photos/a.jpg', str(masks)) == str(masks / 'a.png')
    _touch(masks / 'b.txt')
    assert find_mask('b.png', str(masks)) is None


def test_mask_files_lists_every_file_the_options_name(tmp_path):
    one = _touch(tmp_path / 'one.png')
    _touch(tmp_path / 'masks' / 'x.png')
    _touch(tmp_path / 'masks' / 'readme.txt')
    assert mask_files(one, None) == [one]
    assert sorted(mask_files(None, str(tmp_path / 'masks'))) == [
        str(tmp_path / 'masks' / 'readme.txt'), str(tmp_path / 'masks' / 'x.png')]
    assert mask_files(None, None) == []
